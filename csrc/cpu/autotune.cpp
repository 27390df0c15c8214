// The table of measured choices (hdl/autotune.hpp), one per process, shared by every instruction set's
// kernels and by the bindings that save and load it.
#include "hdl/autotune.hpp"

#include <cstdlib>
#include <map>
#include <mutex>

namespace hdl::autotune {
namespace {

std::mutex table_mutex;
std::map<Key, Algorithm>& table() {
  static std::map<Key, Algorithm> t;
  return t;
}

}  // namespace

bool enabled() {
  const char* env = std::getenv("HDL_AUTOTUNE");
  return !(env && env[0] == '0' && env[1] == '\0');
}

bool lookup(const Key& key, Algorithm& choice) {
  std::lock_guard<std::mutex> lock(table_mutex);
  const auto it = table().find(key);
  if (it == table().end()) return false;
  choice = it->second;
  return true;
}

void record(const Key& key, Algorithm choice) {
  std::lock_guard<std::mutex> lock(table_mutex);
  table()[key] = choice;
}

std::vector<std::pair<Key, Algorithm>> entries() {
  std::lock_guard<std::mutex> lock(table_mutex);
  return {table().begin(), table().end()};
}

void clear() {
  std::lock_guard<std::mutex> lock(table_mutex);
  table().clear();
}

}  // namespace hdl::autotune

namespace hdl {
bool& keep_filters() {  // hdl/autotune.hpp
  thread_local bool keep = false;
  return keep;
}
bool& filters_held() {
  thread_local bool held = false;
  return held;
}
}  // namespace hdl
