/*
 * A stand-in for Rockchip's librkllmrt.so, for tests on any machine.
 *
 * It exports the same function names, struct layouts and callback signature as the
 * RKLLM runtime 1.2.1 header (airockchip/rknn-llm,
 * rkllm-runtime/Linux/librkllm_api/include/rkllm.h), copied below, so the Python
 * ctypes mirror in appliance/llm/rkllm.py is exercised for real: the fake reads every
 * field the Python side sets and reports it back through the fake_rkllm_* getters.
 *
 * Behaviour:
 *   - the "model" is a text file whose content is the reply; rkllm_run streams it
 *     word by word (a leading space belongs to the word), at most max_new_tokens
 *     words, then calls back with RKLLM_RUN_FINISH. A missing or empty model file
 *     makes rkllm_init fail.
 *   - FAKE_RKLLM_DELAY_MS (environment, read at each run) sleeps before each token;
 *     rkllm_abort makes the run return before the next token.
 *   - a model path containing "error" reports RKLLM_RUN_ERROR after one token (and
 *     rkllm_run returns 0); one containing "runfail" makes rkllm_run return -5.
 *   - a callback that returns non-zero pauses the run, as the real 1.2.1 runtime does.
 *   - built with -DFAKE_RKLLM_OLD_RUNTIME it leaves out rkllm_set_function_tools, the
 *     symbol 1.2.1 added (runtimes before it lay out RKLLMInput differently).
 *   - built with -DFAKE_RKLLM_V130 it has rkllm.h 1.3.0's layout instead (RKLLMParam
 *     without img_*, RKLLMInferParam with sampling_params, rkllm_init taking an
 *     RKLLMCallback struct) and the same exported names: what the appliance must refuse
 *     before calling it.
 *
 * Build: gcc -shared -fPIC -O2 -o libfake_rkllm.so fake_rkllm.c
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- rkllm.h 1.2.1: the parts the appliance uses, byte for byte ------------------- */

typedef void* LLMHandle;

typedef enum {
    RKLLM_RUN_NORMAL = 0,
    RKLLM_RUN_WAITING = 1,
    RKLLM_RUN_FINISH = 2,
    RKLLM_RUN_ERROR = 3,
} LLMCallState;

typedef enum {
    RKLLM_INPUT_PROMPT = 0,
    RKLLM_INPUT_TOKEN = 1,
    RKLLM_INPUT_EMBED = 2,
    RKLLM_INPUT_MULTIMODAL = 3,
} RKLLMInputType;

typedef enum {
    RKLLM_INFER_GENERATE = 0,
    RKLLM_INFER_GET_LAST_HIDDEN_LAYER = 1,
    RKLLM_INFER_GET_LOGITS = 2,
} RKLLMInferMode;

typedef struct {
    int32_t base_domain_id;
    int8_t embed_flash;
    int8_t enabled_cpus_num;
    uint32_t enabled_cpus_mask;
    uint8_t n_batch;
    int8_t use_cross_attn;
    uint8_t reserved[104];
} RKLLMExtendParam;

typedef struct {
    const char* model_path;
    int32_t max_context_len;
    int32_t max_new_tokens;
    int32_t top_k;
    int32_t n_keep;
    float top_p;
    float temperature;
    float repeat_penalty;
    float frequency_penalty;
    float presence_penalty;
    int32_t mirostat;
    float mirostat_tau;
    float mirostat_eta;
    bool skip_special_token;
    bool is_async;
#ifdef FAKE_RKLLM_V130
    bool ignore_eos_token;
#else
    const char* img_start;
    const char* img_end;
    const char* img_content;
#endif
    RKLLMExtendParam extend_param;
} RKLLMParam;

typedef struct {
    float* embed;
    size_t n_tokens;
} RKLLMEmbedInput;

typedef struct {
    int32_t* input_ids;
    size_t n_tokens;
} RKLLMTokenInput;

#ifdef FAKE_RKLLM_V130
typedef struct {
    char* prompt;
    struct {
        float* image_embed;
        size_t n_image_tokens;
        size_t n_image;
        const char* image_start;
        const char* image_end;
        const char* image_content;
        size_t image_width;
        size_t image_height;
    } image;
    struct {
        float* video_embed;
        size_t n_frame_tokens;
        size_t n_frame_per_video;
        size_t n_video;
        const char* video_start;
        const char* video_end;
        const char* video_content;
        size_t frame_width;
        size_t frame_height;
    } video;
} RKLLMMultiModelInput;
#else
typedef struct {
    char* prompt;
    float* image_embed;
    size_t n_image_tokens;
    size_t n_image;
    size_t image_width;
    size_t image_height;
} RKLLMMultiModelInput;
#endif

typedef struct {
    const char* role;
    bool enable_thinking;
    RKLLMInputType input_type;
    union {
        const char* prompt_input;
        RKLLMEmbedInput embed_input;
        RKLLMTokenInput token_input;
        RKLLMMultiModelInput multimodal_input;
    };
} RKLLMInput;

typedef struct {
    const char* lora_adapter_name;
} RKLLMLoraParam;

typedef struct {
    int save_prompt_cache;
    const char* prompt_cache_path;
} RKLLMPromptCacheParam;

typedef struct {
    RKLLMInferMode mode;
    RKLLMLoraParam* lora_params;
    RKLLMPromptCacheParam* prompt_cache_params;
#ifdef FAKE_RKLLM_V130
    void* sampling_params; /* RKLLMSamplingParam* */
    int keep_history;
    int32_t max_new_tokens;
#else
    int keep_history;
#endif
} RKLLMInferParam;

typedef struct {
    const float* hidden_states;
    int embd_size;
    int num_tokens;
} RKLLMResultLastHiddenLayer;

typedef struct {
    const float* logits;
    int vocab_size;
    int num_tokens;
} RKLLMResultLogits;

typedef struct {
    float prefill_time_ms;
    int prefill_tokens;
    float generate_time_ms;
    int generate_tokens;
    float memory_usage_mb;
} RKLLMPerfStat;

typedef struct {
    const char* text;
    int32_t token_id;
    RKLLMResultLastHiddenLayer last_hidden_layer;
    RKLLMResultLogits logits;
    RKLLMPerfStat perf;
} RKLLMResult;

typedef int (*LLMResultCallback)(RKLLMResult* result, void* userdata, LLMCallState state);

/* ---- the fake ---------------------------------------------------------------------- */

typedef struct {
    RKLLMParam param; /* copy; param.model_path is replaced by our own copy */
    char* model_path;
    char* reply;
    LLMResultCallback callback;
    atomic_int abort_requested;
    char* tpl_system; /* NULL until rkllm_set_chat_template */
    char* tpl_prefix;
    char* tpl_postfix;
} FakeLlm;

static char g_report[1024];
static char g_prompt[16384];
static atomic_int g_abort_calls;
static atomic_int g_init_calls;
static atomic_int g_destroy_calls;
static atomic_int g_paused;

static char* dup_or_null(const char* s) { return s ? strdup(s) : NULL; }

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

RKLLMParam rkllm_createDefaultParam(void) {
    RKLLMParam p;
    memset(&p, 0, sizeof p);
    p.max_context_len = 512;
    p.max_new_tokens = -1;
    p.top_k = 40;
    p.n_keep = -1;
    p.top_p = 0.9f;
    p.temperature = 0.8f;
    p.repeat_penalty = 1.1f;
    p.mirostat_tau = 5.0f;
    p.mirostat_eta = 0.1f;
    p.skip_special_token = false;
    p.is_async = false;
    p.extend_param.n_batch = 1;
    return p;
}

#ifdef FAKE_RKLLM_V130
typedef struct {
    LLMResultCallback result_callback;
    void* result_userdata;
    void* tokenizer_callback;
    void* tokenizer_userdata;
    void* embed_callback;
    void* embed_userdata;
} RKLLMCallback;

int rkllm_init(LLMHandle* handle, RKLLMParam* param, RKLLMCallback* callbacks) {
    LLMResultCallback callback = callbacks ? callbacks->result_callback : NULL;
#else
int rkllm_init(LLMHandle* handle, RKLLMParam* param, LLMResultCallback callback) {
#endif
    atomic_fetch_add(&g_init_calls, 1);
    if (!handle || !param || !param->model_path || !callback) return -1;
    *handle = NULL;
    if (param->is_async) return -2; /* the appliance always runs synchronously */
    FILE* f = fopen(param->model_path, "rb");
    if (!f) return -3;
    char* reply = calloc(1, 8192);
    size_t n = fread(reply, 1, 8191, f);
    fclose(f);
    while (n > 0 && (reply[n - 1] == '\n' || reply[n - 1] == '\r')) reply[--n] = '\0';
    if (n == 0) { /* an empty file is not a model */
        free(reply);
        return -4;
    }
    FakeLlm* llm = calloc(1, sizeof *llm);
    llm->param = *param;
    llm->model_path = strdup(param->model_path);
    llm->param.model_path = llm->model_path;
    llm->reply = reply;
    llm->callback = callback;
    atomic_store(&llm->abort_requested, 0);
    *handle = llm;
    return 0;
}

int rkllm_destroy(LLMHandle handle) {
    FakeLlm* llm = handle;
    if (!llm) return -1;
    atomic_fetch_add(&g_destroy_calls, 1);
    free(llm->model_path);
    free(llm->reply);
    free(llm->tpl_system);
    free(llm->tpl_prefix);
    free(llm->tpl_postfix);
    free(llm);
    return 0;
}

int rkllm_abort(LLMHandle handle) {
    FakeLlm* llm = handle;
    if (!llm) return -1;
    atomic_fetch_add(&g_abort_calls, 1);
    atomic_store(&llm->abort_requested, 1);
    return 0;
}

int rkllm_set_chat_template(LLMHandle handle, const char* system_prompt, const char* prompt_prefix,
                            const char* prompt_postfix) {
    FakeLlm* llm = handle;
    if (!llm || !system_prompt || !prompt_prefix || !prompt_postfix) return -1;
    free(llm->tpl_system);
    free(llm->tpl_prefix);
    free(llm->tpl_postfix);
    llm->tpl_system = dup_or_null(system_prompt);
    llm->tpl_prefix = dup_or_null(prompt_prefix);
    llm->tpl_postfix = dup_or_null(prompt_postfix);
    return 0;
}

#ifndef FAKE_RKLLM_OLD_RUNTIME
int rkllm_set_function_tools(LLMHandle handle, const char* system_prompt, const char* tools,
                             const char* tool_response_str) {
    (void)system_prompt;
    (void)tools;
    (void)tool_response_str;
    return handle ? 0 : -1;
}
#endif

int rkllm_run(LLMHandle handle, RKLLMInput* input, RKLLMInferParam* infer, void* userdata) {
    FakeLlm* llm = handle;
    if (!llm || !input || !infer) return -1;
    atomic_store(&llm->abort_requested, 0);
    atomic_store(&g_paused, 0);

    const RKLLMParam* p = &llm->param;
    snprintf(g_report, sizeof g_report,
             "max_context_len=%d;max_new_tokens=%d;top_k=%d;temperature=%.3f;top_p=%.3f;"
             "skip_special_token=%d;is_async=%d;n_batch=%d;role=%s;enable_thinking=%d;"
             "input_type=%d;mode=%d;keep_history=%d;lora=%d;prompt_cache=%d",
             p->max_context_len, p->max_new_tokens, p->top_k, p->temperature, p->top_p,
             p->skip_special_token, p->is_async, p->extend_param.n_batch,
             input->role ? input->role : "(null)", input->enable_thinking, input->input_type,
             infer->mode, infer->keep_history, infer->lora_params != NULL,
             infer->prompt_cache_params != NULL);

    if (input->input_type != RKLLM_INPUT_PROMPT || !input->prompt_input) return -2;
    if (!input->role || strcmp(input->role, "user") != 0) return -3;
    if (infer->mode != RKLLM_INFER_GENERATE) return -4;

    /* What the real runtime feeds the tokenizer: the chat template around the input. */
    if (llm->tpl_prefix)
        snprintf(g_prompt, sizeof g_prompt, "%s%s%s%s", llm->tpl_system, llm->tpl_prefix,
                 input->prompt_input, llm->tpl_postfix);
    else
        snprintf(g_prompt, sizeof g_prompt, "<builtin>%s</builtin>", input->prompt_input);

    if (strstr(llm->model_path, "runfail")) return -5;
    const bool report_error = strstr(llm->model_path, "error") != NULL;
    const char* delay_env = getenv("FAKE_RKLLM_DELAY_MS");
    const long delay_ms = delay_env ? atol(delay_env) : 0;

    RKLLMResult result;
    char token[512];
    const char* cursor = llm->reply;
    int count = 0;
    while (*cursor && (p->max_new_tokens <= 0 || count < p->max_new_tokens)) {
        const char* start = cursor;
        while (*cursor == ' ') cursor++;
        while (*cursor && *cursor != ' ') cursor++;
        size_t len = (size_t)(cursor - start);
        if (len >= sizeof token) len = sizeof token - 1;
        memcpy(token, start, len);
        token[len] = '\0';

        if (delay_ms > 0) sleep_ms(delay_ms);
        if (atomic_load(&llm->abort_requested)) return 0; /* aborted: no more callbacks */

        memset(&result, 0, sizeof result);
        if (report_error && count == 1) {
            llm->callback(&result, userdata, RKLLM_RUN_ERROR);
            return 0;
        }
        result.text = token;
        result.token_id = count;
        if (llm->callback(&result, userdata, RKLLM_RUN_NORMAL) != 0) {
            atomic_store(&g_paused, 1); /* the 1.2.1 contract: non-zero pauses the run */
            return 0;
        }
        count++;
    }
    memset(&result, 0, sizeof result);
    result.perf.prefill_tokens = (int)strlen(g_prompt);
    result.perf.generate_tokens = count;
    llm->callback(&result, userdata, RKLLM_RUN_FINISH);
    return 0;
}

/* ---- test hooks (not in the real runtime) ------------------------------------------ */

const char* fake_rkllm_report(void) { return g_report; }
const char* fake_rkllm_last_prompt(void) { return g_prompt; }
int fake_rkllm_abort_calls(void) { return atomic_load(&g_abort_calls); }
int fake_rkllm_init_calls(void) { return atomic_load(&g_init_calls); }
int fake_rkllm_destroy_calls(void) { return atomic_load(&g_destroy_calls); }
int fake_rkllm_paused(void) { return atomic_load(&g_paused); }

/* sizeof and offsetof as compiled here, for comparing with the ctypes mirror. */
long fake_rkllm_layout(const char* name) {
#define LAYOUT(label, value) \
    if (strcmp(name, label) == 0) return (long)(value);
    LAYOUT("RKLLMExtendParam", sizeof(RKLLMExtendParam))
    LAYOUT("RKLLMParam", sizeof(RKLLMParam))
    LAYOUT("RKLLMParam.temperature", offsetof(RKLLMParam, temperature))
    LAYOUT("RKLLMParam.skip_special_token", offsetof(RKLLMParam, skip_special_token))
#ifndef FAKE_RKLLM_V130
    LAYOUT("RKLLMParam.img_start", offsetof(RKLLMParam, img_start))
#endif
    LAYOUT("RKLLMParam.extend_param", offsetof(RKLLMParam, extend_param))
    LAYOUT("RKLLMInput", sizeof(RKLLMInput))
    LAYOUT("RKLLMInput.input_type", offsetof(RKLLMInput, input_type))
    LAYOUT("RKLLMInput.prompt_input", offsetof(RKLLMInput, prompt_input))
    LAYOUT("RKLLMInferParam", sizeof(RKLLMInferParam))
    LAYOUT("RKLLMInferParam.keep_history", offsetof(RKLLMInferParam, keep_history))
    LAYOUT("RKLLMResult", sizeof(RKLLMResult))
    LAYOUT("RKLLMResult.perf", offsetof(RKLLMResult, perf))
#undef LAYOUT
    return -1;
}
