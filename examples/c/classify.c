/*
 * Classify one input with a .jrt model through jetrt's C API: read the
 * input from a .npy file (float32, C order) or a raw file of exactly the
 * input's bytes, run, print the top classes of the first output.
 *
 *   classify MODEL.jrt INPUT.npy|INPUT.raw [--threads N] [--device cpu|cuda|auto]
 *            [--repeat N] [--out FILE.raw]
 *
 * Build (docs/C.md):  cc -std=c11 -Wall classify.c $(pkg-config --cflags --libs jetrt) -o classify
 */
#include <jetrt.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints the failed call and jetrt's message, and exits. */
static void check(jetrt_status st, const char *what) {
    if (st != JETRT_OK) {
        fprintf(stderr, "classify: %s failed (status %d): %s\n", what, (int)st, jetrt_last_error());
        exit(1);
    }
}

/* Reads all of `path` into a malloc'd buffer; *len gets its size. */
static unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(1);
    }
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? 2 * cap : 4096;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                fprintf(stderr, "classify: out of memory reading %s\n", path);
                exit(1);
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    if (ferror(f)) {
        perror(path);
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

/*
 * The data of a .npy file (format 1.0 or 2.0): checks that it holds
 * little-endian float32 in C order and returns where the data starts.
 */
static const unsigned char *npy_data(const unsigned char *buf, size_t len, size_t *data_len, const char *path) {
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        return NULL;
    }
    size_t header, start;
    if (buf[6] == 1) {
        header = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (len >= 12) {
        header = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        fprintf(stderr, "classify: %s: truncated .npy header\n", path);
        exit(1);
    }
    if (start + header > len) {
        fprintf(stderr, "classify: %s: truncated .npy header\n", path);
        exit(1);
    }
    char dict[512] = {0};
    memcpy(dict, buf + start, header < sizeof dict - 1 ? header : sizeof dict - 1);
    if (!strstr(dict, "'descr': '<f4'") || strstr(dict, "'fortran_order': True")) {
        fprintf(stderr, "classify: %s: only little-endian float32 arrays in C order are read here (header: %s)\n", path, dict);
        exit(1);
    }
    *data_len = len - start - header;
    return buf + start + header;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.jrt INPUT.npy|INPUT.raw [--threads N] [--device cpu|cuda|auto] [--repeat N] [--out FILE.raw]\n", argv[0]);
        return 2;
    }
    const char *threads = "0", *device = "auto", *out_path = NULL;
    long repeat = 1;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) {
            threads = argv[i + 1];
        } else if (!strcmp(argv[i], "--device")) {
            device = argv[i + 1];
        } else if (!strcmp(argv[i], "--repeat")) {
            repeat = strtol(argv[i + 1], NULL, 10);
        } else if (!strcmp(argv[i], "--out")) {
            out_path = argv[i + 1];
        } else {
            fprintf(stderr, "classify: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (jetrt_abi_version() != JETRT_ABI_VERSION) {
        fprintf(stderr, "classify: built for jetrt ABI %d, loaded %u\n", JETRT_ABI_VERSION, jetrt_abi_version());
        return 1;
    }

    jetrt_model *model = NULL;
    check(jetrt_model_open(argv[1], &model), "jetrt_model_open");
    jetrt_tensor_info in, out;
    check(jetrt_model_input_info(model, 0, &in), "jetrt_model_input_info");
    check(jetrt_model_output_info(model, 0, &out), "jetrt_model_output_info");
    printf("jetrt %s: input %s (%zu bytes), output %s\n", jetrt_version(), in.name, in.nbytes, out.name);

    jetrt_options *options = NULL;
    check(jetrt_options_new(&options), "jetrt_options_new");
    check(jetrt_options_set(options, "threads", threads), "jetrt_options_set threads");
    check(jetrt_options_set(options, "device", device), "jetrt_options_set device");
    jetrt_session *session = NULL;
    check(jetrt_session_new(model, options, &session), "jetrt_session_new");
    jetrt_options_free(options);

    size_t len, data_len;
    unsigned char *file = read_file(argv[2], &len);
    const unsigned char *data = npy_data(file, len, &data_len, argv[2]);
    if (!data) {
        data = file; /* a raw file */
        data_len = len;
    }
    if (data_len != in.nbytes) {
        fprintf(stderr, "classify: %s holds %zu bytes of data; input %s takes %zu\n", argv[2], data_len, in.name, in.nbytes);
        return 1;
    }
    /* Straight into the session's memory: no copy inside jetrt. */
    void *slot;
    size_t slot_len;
    check(jetrt_session_input_buffer(session, 0, &slot, &slot_len), "jetrt_session_input_buffer");
    memcpy(slot, data, slot_len);
    free(file);

    const void *result = NULL;
    size_t result_len = 0;
    for (long r = 0; r < repeat; r++) {
        check(jetrt_session_run(session), "jetrt_session_run");
        check(jetrt_session_output(session, 0, &result, &result_len), "jetrt_session_output");
    }
    if (out_path) {
        FILE *f = fopen(out_path, "wb");
        if (!f || fwrite(result, 1, result_len, f) != result_len || fclose(f) != 0) {
            perror(out_path);
            return 1;
        }
    }
    if (out.dtype == JETRT_F32) {
        const float *scores = result;
        size_t n = result_len / sizeof(float), best = 0;
        for (size_t i = 1; i < n; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        printf("%s: %zu values, argmax %zu (%.6f)\n", out.name, n, best, (double)scores[best]);
    } else {
        printf("%s: %zu bytes (dtype %d)\n", out.name, result_len, (int)out.dtype);
    }
    jetrt_session_free(session);
    jetrt_model_free(model);
    return 0;
}
