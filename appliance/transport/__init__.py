"""How engines reach another machine (the Wyoming protocol); the engines' remote
clients use it, and nothing here knows the pipeline."""
