// The header compiles as C++ (extern "C", no C-only constructs), twice.
#include <jetrt.h>
#include <jetrt.h>

#include <type_traits>

static_assert(std::is_same<decltype(&jetrt_session_run), jetrt_status (*)(jetrt_session *)>::value, "C linkage, as declared");

int main() {
    return jetrt_abi_version() == JETRT_ABI_VERSION ? 0 : 1;
}
