/* Bad input through the C API from C: every call gets its status and a
 * message, nothing crashes, _free(NULL) does nothing.
 *   errors MODEL.jrt CORRUPT.jrt */
#include <jetrt.h>

#include <stdio.h>
#include <string.h>

static int failures = 0;

static void expect(jetrt_status got, jetrt_status want, const char *what, const char *needle) {
    const char *msg = jetrt_last_error();
    if (got != want || (needle && !strstr(msg, needle))) {
        fprintf(stderr, "FAIL %s: status %d (want %d), message \"%s\" (want \"%s\")\n", what, (int)got, (int)want, msg, needle ? needle : "");
        failures++;
    } else {
        printf("ok   %s: %s\n", what, want == JETRT_OK ? "ok" : msg);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.jrt CORRUPT.jrt\n", argv[0]);
        return 2;
    }
    jetrt_model *model = NULL;
    expect(jetrt_model_open("/nonexistent/model.jrt", &model), JETRT_IO, "missing file", "/nonexistent/model.jrt");
    expect(jetrt_model_open(argv[2], &model), JETRT_INVALID_MODEL, "corrupt file", "jetrt_model_open");
    expect(jetrt_model_open(NULL, &model), JETRT_INVALID_ARGUMENT, "NULL path", "path is NULL");
    expect(jetrt_model_open(argv[1], NULL), JETRT_INVALID_ARGUMENT, "NULL out", "out is NULL");
    expect(jetrt_model_open(argv[1], &model), JETRT_OK, "open", NULL);

    size_t index;
    expect(jetrt_model_input_index(model, "no such input", &index), JETRT_INVALID_ARGUMENT, "unknown input name", "no input named");
    jetrt_tensor_info info;
    expect(jetrt_model_input_info(model, 99, &info), JETRT_INVALID_ARGUMENT, "input index", "out of range");
    expect(jetrt_model_input_info(model, 0, &info), JETRT_OK, "input info", NULL);

    jetrt_options *options = NULL;
    expect(jetrt_options_new(&options), JETRT_OK, "options", NULL);
    expect(jetrt_options_set(options, "threds", "2"), JETRT_INVALID_ARGUMENT, "unknown option", "unknown option");
    expect(jetrt_options_set(options, "threads", "-1"), JETRT_INVALID_ARGUMENT, "bad thread count", "threads");
    expect(jetrt_options_set(options, "device", "cpu"), JETRT_OK, "device cpu", NULL);

    jetrt_session *session = NULL;
    expect(jetrt_session_new(NULL, options, &session), JETRT_INVALID_ARGUMENT, "NULL model", "model is NULL");
    expect(jetrt_session_new(model, options, &session), JETRT_OK, "session", NULL);
    jetrt_options_free(options);
    expect(jetrt_session_run(session), JETRT_INVALID_INPUT, "run before setting the input", "was never set");
    float small[3] = {0};
    expect(jetrt_session_set_input(session, 0, small, sizeof small), JETRT_INVALID_INPUT, "input too small", "bytes");
    expect(jetrt_session_set_input(session, 0, NULL, info.nbytes), JETRT_INVALID_ARGUMENT, "NULL input data", "data is NULL");
    const void *out;
    size_t nbytes;
    expect(jetrt_session_output(session, 7, &out, &nbytes), JETRT_INVALID_ARGUMENT, "output index", "out of range");
    expect(jetrt_session_reload(session, argv[2]), JETRT_INVALID_MODEL, "reload a corrupt file", "jetrt_session_reload");

    jetrt_session_free(session);
    jetrt_model_free(model);
    jetrt_session_free(NULL);
    jetrt_options_free(NULL);
    jetrt_model_free(NULL);
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("all error checks passed\n");
    return 0;
}
