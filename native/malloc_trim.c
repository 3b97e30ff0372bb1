// Two functions for Node over glibc's allocator, where Buffers and ArrayBuffers live (the C heap):
//
// trim(): malloc_trim(0), which returns the C heap's free pages to the OS. glibc keeps freed memory for reuse and
// returns it only from the top of the heap, above a threshold that grows (up to 64 MiB) once large buffers have
// been freed. After a burst of writes a member's C heap held 32–60 MiB free this way (measured with gdb calling
// malloc_trim on a live member after 100,000 puts). An idle member calls it once (src/server/c-heap.ts).
//
// mmapThreshold(bytes): mallopt(M_MMAP_THRESHOLD), a fixed size from which allocations get pages of their own,
// returned to the OS when freed. glibc's threshold otherwise starts at 128 KiB and rises to the size of each such
// buffer freed, so after the first 1 MiB buffer is freed every later one comes from the heap, and freeing them
// leaves holes the heap keeps: at a million keys, 140–190 MiB per member beyond V8's heap and array buffers.
//
// Elsewhere than glibc neither does anything: both return false.
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

static napi_value MmapThreshold(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value arg;
  int64_t bytes = -1;
  int done = 0;
  if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) == napi_ok && argc == 1) napi_get_value_int64(env, arg, &bytes);
#if defined(__GLIBC__)
  if (bytes > 0 && bytes <= 32 * 1024 * 1024) done = mallopt(M_MMAP_THRESHOLD, (int)bytes);
#endif
  napi_value result;
  napi_get_boolean(env, done != 0, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "mmapThreshold", NAPI_AUTO_LENGTH, MmapThreshold, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "mmapThreshold", fn) != napi_ok) return NULL;
  return exports;
}
