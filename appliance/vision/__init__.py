"""The optional camera vision hook: camera sources, OCR, a vision model, and the
`VisionService.look()` entry point every trigger uses. Off unless `[vision] camera` is set."""
