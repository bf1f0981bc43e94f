// Takes the contents of a protobuf repeated field into a std::vector and frees the field's memory
// at once, so that a model built from a parsed message holds each large field once, not twice,
// while it converts the next one. (Clear() would keep the field's allocation, and a cleared
// RepeatedPtrField its element objects, until the message is destroyed.)
//
//   std::vector<std::string> vocabulary = TakeRepeated(state->mutable_vocabulary());
//   std::vector<double> idf = TakeRepeated(state->mutable_idf());   // state->idf_size() == 0 now
//   FreeRepeated(layer->mutable_weight()->mutable_values());        // once converted elsewhere
#ifndef MAAS_COMMON_CONVERT_TAKE_REPEATED_H_
#define MAAS_COMMON_CONVERT_TAKE_REPEATED_H_

#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/repeated_field.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace maas::convert {

// The values of `field`, which is left empty with its allocation freed.
template <class T>
std::vector<T> TakeRepeated(google::protobuf::RepeatedField<T>* field) {
  std::vector<T> values(field->begin(), field->end());
  google::protobuf::RepeatedField<T>().Swap(field);  // the temporary frees the values
  return values;
}

// The strings of `field`, moved out, each trimmed to its size (a parsed string may have more
// capacity: what a copy would hold); the field is left empty with its element objects and array
// freed.
inline std::vector<std::string> TakeRepeated(
    google::protobuf::RepeatedPtrField<std::string>* field) {
  std::vector<std::string> strings;
  strings.reserve(static_cast<size_t>(field->size()));
  for (std::string& s : *field) {
    strings.push_back(std::move(s));
    strings.back().shrink_to_fit();
  }
  google::protobuf::RepeatedPtrField<std::string>().Swap(field);
  return strings;
}

// Empties `field` and frees its allocation (what Clear() keeps).
template <class T>
void FreeRepeated(google::protobuf::RepeatedField<T>* field) {
  google::protobuf::RepeatedField<T>().Swap(field);
}

}  // namespace maas::convert

#endif  // MAAS_COMMON_CONVERT_TAKE_REPEATED_H_
