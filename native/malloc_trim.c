// One function for Node: glibc's malloc_trim(0), which returns the C heap's free pages to the OS.
//
// glibc keeps freed memory for reuse and returns it only from the top of the heap, above a threshold that grows
// (up to 64 MiB) once large buffers have been freed. After a burst of writes a member's C heap held 32–60 MiB
// free this way (measured with gdb calling malloc_trim on a live member after 100,000 puts). Node has no way to
// call it, and the glibc tunables that would trim as it goes cost ~15% put throughput; an idle member calls this
// once instead (src/server/c-heap.ts). Elsewhere than glibc there is nothing to trim: it returns false.
#include <node_api.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#if defined(__GLIBC__)
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  return exports;
}
