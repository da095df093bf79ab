/* The header may be included twice, compiles as strict C99 without
 * warnings, and declares what docs/C.md promises. */
#include <jetrt.h>
#include <jetrt.h>

#if JETRT_ABI_VERSION != 1
#error "unexpected ABI version"
#endif

int jetrt_header_check(void);
int jetrt_header_check(void) {
    jetrt_status (*open)(const char *, jetrt_model **) = jetrt_model_open;
    void (*model_free)(jetrt_model *) = jetrt_model_free;
    return open != NULL && model_free != NULL && JETRT_OK == 0;
}
