// The extension module hdl._cuda: device memory, copies, the stream and events. Kernels are bound
// in kernels.cpp, DLPack in dlpack.cpp. Pointers cross into Python as integers inside the
// DeviceArray of python/hdl/cuda, which checks shapes and dtypes before any call here.
#include <cuda_runtime_api.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "hdl/cuda/memory.hpp"

namespace py = pybind11;

namespace hdl::bind_cuda {
void bind_dlpack(py::module_& m);
void bind_kernels(py::module_& m);

namespace {

using hdl::cuda::stream;

// Device memory from the caching allocator, owned by a Python object (DeviceArray holds one).
// Freed into the cache; once exported (DLPack, __cuda_array_interface__) it is reused only after
// the whole device is idle (memory.hpp). Never throws from its destructor.
class Buffer {
 public:
  explicit Buffer(std::size_t nbytes) : nbytes_(nbytes), ptr_(hdl::cuda::device_alloc(nbytes)) {}
  ~Buffer() { hdl::cuda::device_free(ptr_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  std::uintptr_t ptr() const { return reinterpret_cast<std::uintptr_t>(ptr_); }
  std::size_t nbytes() const { return nbytes_; }
  void mark_exported() { hdl::cuda::mark_exported(ptr_); }

 private:
  std::size_t nbytes_;
  void* ptr_;
};

// An event on hdl's stream: for timings, or (timing=False) to order the copy stream after it.
class Event {
 public:
  explicit Event(bool timing) { HDL_CUDA_CHECK(cudaEventCreateWithFlags(&e_, timing ? 0 : cudaEventDisableTiming)); }
  ~Event() { cudaEventDestroy(e_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record() { HDL_CUDA_CHECK(cudaEventRecord(e_, stream())); }
  void synchronize() { HDL_CUDA_CHECK(cudaEventSynchronize(e_)); }
  float elapsed_ms(const Event& later) const {
    float ms = 0;
    HDL_CUDA_CHECK(cudaEventElapsedTime(&ms, e_, later.e_));
    return ms;
  }
  cudaEvent_t get() const { return e_; }

 private:
  cudaEvent_t e_;
};

// Page-locked host memory, seen from Python as a writable buffer (numpy.frombuffer), with the
// event of its last upload so that it is not overwritten while a copy is in flight.
class PinnedBuffer {
 public:
  explicit PinnedBuffer(std::size_t nbytes) : nbytes_(nbytes), ptr_(hdl::cuda::pinned_alloc(nbytes)) {
    HDL_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~PinnedBuffer() {
    cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
    hdl::cuda::pinned_free(ptr_);
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  // Asynchronous copy of the first nbytes to device memory at dst on the copy stream, once hdl's
  // stream has passed `after` (the last work reading dst); work queued on hdl's stream from now on
  // waits for the copy. So copying batch k+1 overlaps the kernels of batch k.
  void upload(std::uintptr_t dst, std::size_t nbytes, const Event& after) {
    if (nbytes > nbytes_) throw py::value_error("PinnedBuffer.upload: more bytes than the buffer holds");
    const cudaStream_t copy = hdl::cuda::copy_stream();
    HDL_CUDA_CHECK(cudaStreamWaitEvent(copy, after.get(), 0));
    HDL_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), ptr_, nbytes, cudaMemcpyHostToDevice, copy));
    HDL_CUDA_CHECK(cudaEventRecord(done_, copy));
    HDL_CUDA_CHECK(cudaStreamWaitEvent(stream(), done_, 0));
  }
  void wait() { HDL_CUDA_CHECK(cudaEventSynchronize(done_)); }
  std::size_t nbytes() const { return nbytes_; }
  void* data() const { return ptr_; }

 private:
  std::size_t nbytes_;
  void* ptr_;
  cudaEvent_t done_;
};

void* host_pointer(const py::buffer& b, std::size_t nbytes, bool writable) {
  py::buffer_info info = b.request(writable);
  if (static_cast<std::size_t>(info.size * info.itemsize) < nbytes)
    throw py::value_error("host buffer holds fewer bytes than the copy needs");
  return info.ptr;
}

}  // namespace
}  // namespace hdl::bind_cuda

PYBIND11_MODULE(_cuda, m) {
  using namespace hdl::bind_cuda;
  namespace hc = hdl::cuda;
  m.doc() = "hdl's CUDA kernels and device memory; use the Python API in hdl.cuda";
  m.def("availability", [] {
    std::string why;
    const int n = hc::device_count(&why);
    return py::make_tuple(n, why);
  }, "(number of usable GPUs, reason when there are none); never raises.");
  m.def("device_name", [](int device) {
    cudaDeviceProp p;
    hc::enter();
    HDL_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
    return py::make_tuple(std::string(p.name), p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem);
  });
  m.def("runtime_version", [] {
    int v = 0;
    cudaRuntimeGetVersion(&v);
    return v;
  });
  m.def("set_device", &hc::set_device, py::arg("device"));
  m.def("current_device", &hc::device);
  m.def("set_sync_launches", &hc::set_sync_launches, py::arg("on"));
  m.def("sync_launches", &hc::sync_launches);
  m.def("stream_handle", [] { return reinterpret_cast<std::uintptr_t>(hc::stream()); },
        "hdl's stream as an integer (for __cuda_array_interface__ and DLPack).");
  m.def("synchronize", [] {
    py::gil_scoped_release release;
    hc::synchronize();
  });
  m.def("stream_wait_for_hdl", [](std::uintptr_t consumer) {
    // Work queued on the consumer's stream from now on waits for the work queued on hdl's so far.
    cudaEvent_t e;
    HDL_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    HDL_CUDA_CHECK(cudaEventRecord(e, hc::stream()));
    HDL_CUDA_CHECK(cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(consumer), e, 0));
    cudaEventDestroy(e);
  }, py::arg("consumer"));
  m.def("set_tf32", &hc::set_tf32, py::arg("on"));
  m.def("tf32", &hc::tf32);
  m.def("set_gemm_tiles", [](bool square) { hc::set_gemm_tiles(square ? hc::GemmTiles::square : hc::GemmTiles::automatic); },
        py::arg("square"));
  m.def("gemm_tiles_square", [] { return hc::gemm_tiles() == hc::GemmTiles::square; });
  m.def("empty_cache", &hc::empty_cache);
  m.def("memory_stats", [] {
    const auto s = hc::allocator_stats();
    py::dict d;
    d["in_use_bytes"] = s.in_use_bytes;
    d["cached_bytes"] = s.cached_bytes;
    d["cuda_mallocs"] = s.cuda_mallocs;
    d["exported_pending_bytes"] = s.exported_pending_bytes;
    d["device_syncs"] = s.device_syncs;
    return d;
  });

  py::class_<Buffer>(m, "Buffer", "Device memory from hdl's caching allocator (freed into the cache).")
      .def(py::init<std::size_t>(), py::arg("nbytes"))
      .def_property_readonly("ptr", &Buffer::ptr)
      .def_property_readonly("nbytes", &Buffer::nbytes)
      .def("mark_exported", &Buffer::mark_exported);

  py::class_<PinnedBuffer>(m, "PinnedBuffer", py::buffer_protocol())
      .def(py::init<std::size_t>(), py::arg("nbytes"))
      .def_property_readonly("nbytes", &PinnedBuffer::nbytes)
      .def("upload", &PinnedBuffer::upload, py::arg("dst"), py::arg("nbytes"), py::arg("after"))
      .def("wait", &PinnedBuffer::wait, py::call_guard<py::gil_scoped_release>())
      .def_buffer([](PinnedBuffer& b) {
        return py::buffer_info(b.data(), 1, py::format_descriptor<std::uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.nbytes())}, {1});
      });

  py::class_<Event>(m, "Event")
      .def(py::init<bool>(), py::arg("timing") = true)
      .def("record", &Event::record)
      .def("synchronize", &Event::synchronize, py::call_guard<py::gil_scoped_release>())
      .def("elapsed_ms", &Event::elapsed_ms, py::arg("later"));

  // Copies. Host <-> device copies from pageable numpy memory finish before returning.
  m.def("copy_to_device", [](std::uintptr_t dst, const py::buffer& src, std::size_t nbytes) {
    const void* p = host_pointer(src, nbytes, false);
    py::gil_scoped_release release;
    HDL_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), p, nbytes, cudaMemcpyHostToDevice, hc::stream()));
    hc::synchronize();
  });
  m.def("copy_to_host", [](const py::buffer& dst, std::uintptr_t src, std::size_t nbytes) {
    void* p = host_pointer(dst, nbytes, true);
    py::gil_scoped_release release;
    HDL_CUDA_CHECK(cudaMemcpyAsync(p, reinterpret_cast<const void*>(src), nbytes, cudaMemcpyDeviceToHost, hc::stream()));
    hc::synchronize();
  });
  m.def("copy_device", [](std::uintptr_t dst, std::uintptr_t src, std::size_t nbytes) {
    HDL_CUDA_CHECK(cudaMemcpyAsync(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), nbytes,
                                   cudaMemcpyDeviceToDevice, hc::stream()));
  });
  m.def("memset", [](std::uintptr_t dst, int value, std::size_t nbytes) {
    HDL_CUDA_CHECK(cudaMemsetAsync(reinterpret_cast<void*>(dst), value, nbytes, hc::stream()));
  });

  bind_dlpack(m);
  bind_kernels(m);
}
