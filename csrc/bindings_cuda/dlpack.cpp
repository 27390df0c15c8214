// DLPack export and import for hdl.cuda.DeviceArray: capsules made and read by hand from the
// ABI in hdl/cuda/dlpack.h. Export keeps the Python owner of the memory alive until the consumer
// calls the deleter; import keeps the producer's managed tensor alive (its deleter runs when the
// returned keeper object is collected, after hdl's stream is done with it: dlpack_release.hpp). The device type is data here, so the same code is tested
// on CPU memory (numpy) where there is no GPU.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "hdl/cuda/dlpack.h"
#include "hdl/cuda/dlpack_release.hpp"

namespace py = pybind11;

namespace hdl::bind_cuda {

using namespace hdl::dlpack;

namespace {

// Shape and strides live with the manager context, which holds a reference to the owner.
struct Context {
  PyObject* owner;
  std::vector<std::int64_t> shape, strides;
};

template <class Managed>
void delete_managed(Managed* self) {
  auto* ctx = static_cast<Context*>(self->manager_ctx);
  {
    py::gil_scoped_acquire gil;  // the consumer may call the deleter from any thread
    Py_XDECREF(ctx->owner);
  }
  delete ctx;
  delete self;
}

// Capsule destructor: if nobody consumed the capsule (its name is unchanged), the tensor is ours to free.
template <class Managed>
void capsule_destructor(PyObject* capsule, const char* name) {
  if (!PyCapsule_IsValid(capsule, name)) return;  // renamed "used_...": the consumer owns it
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (m && m->deleter) m->deleter(m);
}

void legacy_destructor(PyObject* c) { capsule_destructor<DLManagedTensor>(c, "dltensor"); }
void versioned_destructor(PyObject* c) { capsule_destructor<DLManagedTensorVersioned>(c, "dltensor_versioned"); }

DLTensor describe(Context* ctx, std::uintptr_t ptr, int type_code, int bits, int device_type, int device_id) {
  DLTensor t{};
  t.data = reinterpret_cast<void*>(ptr);
  t.device = {static_cast<DeviceType>(device_type), device_id};
  t.ndim = static_cast<std::int32_t>(ctx->shape.size());
  t.dtype = {static_cast<std::uint8_t>(type_code), static_cast<std::uint8_t>(bits), 1};
  t.shape = ctx->shape.data();
  t.strides = ctx->strides.data();
  t.byte_offset = 0;
  return t;
}

py::capsule export_capsule(const py::object& owner, std::uintptr_t ptr, const std::vector<std::int64_t>& shape,
                           int type_code, int bits, int device_type, int device_id, bool versioned, bool read_only) {
  auto* ctx = new Context{owner.ptr(), shape, std::vector<std::int64_t>(shape.size())};
  std::int64_t stride = 1;  // C-contiguous strides, in elements (DLPack >= 1.0 asks for them)
  for (std::size_t i = shape.size(); i-- > 0;) {
    ctx->strides[i] = stride;
    stride *= shape[i];
  }
  Py_XINCREF(owner.ptr());
  const DLTensor t = describe(ctx, ptr, type_code, bits, device_type, device_id);
  PyObject* cap;
  if (versioned) {
    auto* m = new DLManagedTensorVersioned{{1, 0}, ctx, &delete_managed<DLManagedTensorVersioned>,
                                           read_only ? kFlagReadOnly : 0, t};
    cap = PyCapsule_New(m, "dltensor_versioned", versioned_destructor);
  } else {
    auto* m = new DLManagedTensor{t, ctx, &delete_managed<DLManagedTensor>};
    cap = PyCapsule_New(m, "dltensor", legacy_destructor);
  }
  if (!cap) throw py::error_already_set();
  return py::reinterpret_steal<py::capsule>(cap);
}

// What a consumer needs from a producer's capsule; `keeper` frees the producer's tensor when collected.
py::dict import_capsule(const py::capsule& capsule) {
  PyObject* cap = capsule.ptr();
  const DLTensor* t;
  py::capsule keeper;
  std::uint64_t flags = 0;
  std::string version = "0.x";
  if (PyCapsule_IsValid(cap, "dltensor_versioned")) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, "dltensor_versioned"));
    if (m->version.major != 1)
      throw py::value_error("from_dlpack: DLPack major version " + std::to_string(m->version.major) +
                            " is not supported (hdl reads 0.x and 1.x)");
    t = &m->dl_tensor;
    flags = m->flags;
    version = std::to_string(m->version.major) + "." + std::to_string(m->version.minor);
    PyCapsule_SetName(cap, "used_dltensor_versioned");
    keeper = py::capsule(m, [](void* p) { release_imported(static_cast<DLManagedTensorVersioned*>(p)); });
  } else if (PyCapsule_IsValid(cap, "dltensor")) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
    t = &m->dl_tensor;
    PyCapsule_SetName(cap, "used_dltensor");
    keeper = py::capsule(m, [](void* p) { release_imported(static_cast<DLManagedTensor*>(p)); });
  } else {
    throw py::type_error("from_dlpack: not an unconsumed DLPack capsule (\"dltensor\" or \"dltensor_versioned\")");
  }
  py::tuple shape(t->ndim);
  for (int i = 0; i < t->ndim; ++i) shape[i] = t->shape[i];
  py::object strides = py::none();
  if (t->strides) {
    py::tuple s(t->ndim);
    for (int i = 0; i < t->ndim; ++i) s[i] = t->strides[i];
    strides = s;
  }
  py::dict d;
  d["ptr"] = reinterpret_cast<std::uintptr_t>(t->data) + t->byte_offset;
  d["shape"] = shape;
  d["strides"] = strides;
  d["dtype"] = py::make_tuple(int(t->dtype.code), int(t->dtype.bits), int(t->dtype.lanes));
  d["device"] = py::make_tuple(int(t->device.device_type), int(t->device.device_id));
  d["read_only"] = bool(flags & kFlagReadOnly);
  d["version"] = version;
  d["keeper"] = keeper;
  return d;
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.def("dlpack_export", &export_capsule, py::arg("owner"), py::arg("ptr"), py::arg("shape"), py::arg("type_code"),
        py::arg("bits"), py::arg("device_type"), py::arg("device_id"), py::arg("versioned"),
        py::arg("read_only") = false,
        "A DLPack capsule over memory at ptr (C-contiguous), keeping owner alive until the consumer is done.");
  m.def("dlpack_import", &import_capsule, py::arg("capsule"),
        "Reads a DLPack capsule (0.x or 1.x) and marks it consumed: a dict of ptr, shape, strides, dtype "
        "(code, bits, lanes), device (type, id), read_only, version and keeper (owns the producer's tensor).");
}

}  // namespace hdl::bind_cuda
