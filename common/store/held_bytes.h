// Estimates of the heap memory a loaded model's containers hold, for the model cache's byte budget
// (ModelCache charges T::held_bytes(); see model_cache.h). Each counts the container's own
// allocation by capacity, plus the heap of long strings (short ones live inside the string).
//
//   int64_t bytes = store::VectorBytes(table_) + store::StringVectorBytes(vocabulary_) +
//                   store::StringKeyedHashBytes(index_);
#ifndef MAAS_COMMON_STORE_HELD_BYTES_H_
#define MAAS_COMMON_STORE_HELD_BYTES_H_

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace maas::store {

// Heap bytes of one std::string (0 when it fits in the small-string buffer).
inline int64_t StringHeapBytes(const std::string& s) {
  return s.capacity() > std::string().capacity() ? static_cast<int64_t>(s.capacity()) + 1 : 0;
}

// The allocation of a vector (by capacity), not counting what its elements own.
template <class T, class Allocator>
int64_t VectorBytes(const std::vector<T, Allocator>& v) {
  return static_cast<int64_t>(v.capacity() * sizeof(T));
}

// A vector of strings: its allocation plus every string's heap.
inline int64_t StringVectorBytes(const std::vector<std::string>& v) {
  int64_t bytes = VectorBytes(v);
  for (const std::string& s : v) bytes += StringHeapBytes(s);
  return bytes;
}

// The table of an absl flat/node hash container: one slot and one control byte per bucket, plus a
// group of control bytes; not counting what the elements own.
template <class Map>
int64_t HashTableBytes(const Map& map) {
  return static_cast<int64_t>(map.capacity() * (sizeof(typename Map::value_type) + 1) + 16);
}

// A hash map or set with std::string keys: its table plus every key's heap.
template <class Map>
int64_t StringKeyedHashBytes(const Map& map) {
  int64_t bytes = HashTableBytes(map);
  for (const auto& element : map) {
    if constexpr (std::is_same_v<std::decay_t<decltype(element)>, std::string>) {
      bytes += StringHeapBytes(element);
    } else {
      bytes += StringHeapBytes(element.first);
    }
  }
  return bytes;
}

}  // namespace maas::store

#endif  // MAAS_COMMON_STORE_HELD_BYTES_H_
