// jetrt's C API from C++: handles owned by std::unique_ptr, errors as
// exceptions, and one model shared by sessions on several threads (a model
// is thread-safe; each session is used by one thread).
//
//   classify_cpp MODEL.jrt INPUT.npy|INPUT.raw [THREADS]
//
// Runs the input on THREADS sessions at once (default 2), checks that they
// agree, and prints the first output's argmax.
// Build (docs/C.md):  c++ -std=c++17 -Wall classify.cpp $(pkg-config --cflags --libs jetrt) -pthread -o classify_cpp
#include <jetrt.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

void check(jetrt_status st, const char *what) {
    if (st != JETRT_OK) {
        throw std::runtime_error(std::string(what) + " failed: " + jetrt_last_error());
    }
}

struct ModelFree {
    void operator()(jetrt_model *m) const { jetrt_model_free(m); }
};
struct SessionFree {
    void operator()(jetrt_session *s) const { jetrt_session_free(s); }
};
using Model = std::unique_ptr<jetrt_model, ModelFree>;
using Session = std::unique_ptr<jetrt_session, SessionFree>;

Model open(const char *path) {
    jetrt_model *m = nullptr;
    check(jetrt_model_open(path, &m), "jetrt_model_open");
    return Model(m);
}

Session session(const Model &model) {
    jetrt_options *o = nullptr;
    check(jetrt_options_new(&o), "jetrt_options_new");
    std::unique_ptr<jetrt_options, void (*)(jetrt_options *)> options(o, jetrt_options_free);
    check(jetrt_options_set(o, "threads", "1"), "jetrt_options_set");
    jetrt_session *s = nullptr;
    check(jetrt_session_new(model.get(), o, &s), "jetrt_session_new");
    return Session(s);
}

// The data of a little-endian float32 .npy file, or the whole file.
std::vector<char> input_bytes(const char *path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error(std::string("cannot read ") + path);
    }
    std::vector<char> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (all.size() >= 10 && std::memcmp(all.data(), "\x93NUMPY", 6) == 0) {
        size_t header = static_cast<unsigned char>(all[8]) | static_cast<size_t>(static_cast<unsigned char>(all[9])) << 8;
        size_t start = 10;
        if (all[6] != 1) {
            throw std::runtime_error("only .npy format 1.0 is read here");
        }
        std::string dict(all.begin() + start, all.begin() + start + header);
        if (dict.find("'descr': '<f4'") == std::string::npos) {
            throw std::runtime_error("only float32 .npy files are read here: " + dict);
        }
        return std::vector<char>(all.begin() + start + header, all.end());
    }
    return all;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " MODEL.jrt INPUT.npy|INPUT.raw [THREADS]\n";
        return 2;
    }
    try {
        Model model = open(argv[1]);
        std::vector<char> input = input_bytes(argv[2]);
        jetrt_tensor_info out{};
        check(jetrt_model_output_info(model.get(), 0, &out), "jetrt_model_output_info");
        int n = argc > 3 ? std::stoi(argv[3]) : 2;
        std::vector<std::vector<float>> results(n);
        std::vector<std::string> errors(n);
        std::vector<std::thread> threads;
        for (int t = 0; t < n; t++) {
            threads.emplace_back([&, t] {
                try {
                    Session s = session(model);
                    check(jetrt_session_set_input(s.get(), 0, input.data(), input.size()), "jetrt_session_set_input");
                    check(jetrt_session_run(s.get()), "jetrt_session_run");
                    const void *data = nullptr;
                    size_t bytes = 0;
                    check(jetrt_session_output(s.get(), 0, &data, &bytes), "jetrt_session_output");
                    const float *f = static_cast<const float *>(data);
                    results[t].assign(f, f + bytes / sizeof(float));
                } catch (const std::exception &e) {
                    errors[t] = e.what();
                }
            });
        }
        for (auto &th : threads) {
            th.join();
        }
        for (int t = 0; t < n; t++) {
            if (!errors[t].empty()) {
                throw std::runtime_error("thread " + std::to_string(t) + ": " + errors[t]);
            }
            if (results[t] != results[0]) {
                throw std::runtime_error("sessions disagree");
            }
        }
        size_t best = 0;
        for (size_t i = 1; i < results[0].size(); i++) {
            if (results[0][i] > results[0][best]) {
                best = i;
            }
        }
        std::cout << out.name << ": " << n << " sessions agree, argmax " << best << "\n";
    } catch (const std::exception &e) {
        std::cerr << "classify_cpp: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
