#include "services/generative/core/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"

namespace maas::generative {
namespace {

uint64_t ReadLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

absl::Status Invalid(const std::string& what, const std::string& detail) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", detail));
}

}  // namespace

absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes, const std::string& what,
                                                 bool read_values) {
  if (bytes.size() < 8) {
    return Invalid(what, absl::StrCat("truncated: ", bytes.size(),
                                      " bytes, but a safetensors file starts with an 8-byte "
                                      "header length"));
  }
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t header_length = ReadLittleEndian64(data);
  // Before the header is parsed: nlohmann's DOM takes up to ~60x the text (a 60 MB header peaked
  // at 3.7 GB), and a decoder's header needs ~150 bytes per layer.
  if (header_length > kMaxSafetensorsHeaderBytes && header_length <= bytes.size() - 8) {
    return Invalid(what, absl::StrCat("the header is ", header_length,
                                      " bytes, above the limit of ", kMaxSafetensorsHeaderBytes,
                                      " bytes (1 MiB, about 7 000 layers at ~150 bytes of JSON "
                                      "each); store fewer tensors, or drop unused __metadata__"));
  }
  if (header_length > bytes.size() - 8) {
    return Invalid(what, absl::StrCat("header length ", header_length, " runs past the end of the ",
                                      bytes.size(), "-byte file (truncated or not safetensors)"));
  }
  const absl::string_view header_text = bytes.substr(8, header_length);
  const absl::string_view buffer = bytes.substr(8 + header_length);
  nlohmann::json header = nlohmann::json::parse(header_text.begin(), header_text.end(), nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded()) return Invalid(what, "the header is not valid JSON");
  if (!header.is_object()) return Invalid(what, "the header is not a JSON object");

  SafetensorsFile file;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& entry = it.value();
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid(what, "__metadata__ is not a JSON object");
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string()) {
          return Invalid(what, absl::StrCat("__metadata__.", m.key(), " is not a string"));
        }
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string field = absl::StrCat("tensor '", name, "'");
    if (!entry.is_object()) return Invalid(what, absl::StrCat(field, " is not a JSON object"));
    const auto dtype = entry.find("dtype");
    const auto shape = entry.find("shape");
    const auto offsets = entry.find("data_offsets");
    if (dtype == entry.end() || !dtype->is_string()) {
      return Invalid(what, absl::StrCat(field, ": dtype is missing or not a string"));
    }
    Tensor tensor;
    tensor.dtype = dtype->get<std::string>();
    size_t element_size = 0;
    if (tensor.dtype == "F32") {
      element_size = 4;
    } else if (tensor.dtype == "F64") {
      element_size = 8;
    } else {
      return Invalid(what, absl::StrCat(field, ": dtype ", tensor.dtype,
                                        " is not supported; store F32 or F64 weights"));
    }
    if (shape == entry.end() || !shape->is_array()) {
      return Invalid(what, absl::StrCat(field, ": shape is missing or not an array"));
    }
    uint64_t count = 1;
    for (const nlohmann::json& d : *shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return Invalid(what,
                       absl::StrCat(field, ": shape has an entry that is not an integer >= 0"));
      }
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > (uint64_t{1} << 40) / dim) {
        return Invalid(what, absl::StrCat(field, ": shape is too large"));
      }
      count *= dim;
      tensor.shape.push_back(static_cast<int64_t>(dim));
    }
    if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return Invalid(what,
                     absl::StrCat(field, ": data_offsets must be [begin, end], two integers >= 0"));
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > buffer.size()) {
      return Invalid(what,
                     absl::StrCat(field, ": data_offsets [", begin, ", ", end, ") are outside the ",
                                  buffer.size(), "-byte data buffer (truncated file?)"));
    }
    if (end - begin != count * element_size) {
      return Invalid(what, absl::StrCat(field, ": data_offsets cover ", end - begin,
                                        " bytes but shape x dtype needs ", count * element_size));
    }
    ranges.emplace_back(begin, end);
    if (!read_values) {
      file.tensors.emplace(name, std::move(tensor));
      continue;
    }
    tensor.values.resize(count);
    const char* p = buffer.data() + begin;
    for (uint64_t i = 0; i < count; ++i) {
      double v;
      if (element_size == 4) {
        float f;
        uint32_t u = 0;
        for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<unsigned char>(p[4 * i + b]);
        std::memcpy(&f, &u, 4);
        v = f;
      } else {
        uint64_t u = ReadLittleEndian64(reinterpret_cast<const unsigned char*>(p + 8 * i));
        std::memcpy(&v, &u, 8);
      }
      if (!std::isfinite(v)) {
        return Invalid(what, absl::StrCat(field, ": value ", i, " is not finite"));
      }
      tensor.values[i] = v;
    }
    file.tensors.emplace(name, std::move(tensor));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return Invalid(what, "two tensors' data_offsets overlap");
    }
  }
  return file;
}

std::string WriteSafetensors(const std::map<std::string, Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata, bool f32) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string buffer;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t begin = buffer.size();
    for (double v : tensor.values) {
      if (f32) {
        const float f = static_cast<float>(v);
        uint32_t u;
        std::memcpy(&u, &f, 4);
        for (int b = 0; b < 4; ++b) buffer.push_back(static_cast<char>((u >> (8 * b)) & 0xff));
      } else {
        uint64_t u;
        std::memcpy(&u, &v, 8);
        for (int b = 0; b < 8; ++b) buffer.push_back(static_cast<char>((u >> (8 * b)) & 0xff));
      }
    }
    header[name] = {{"dtype", f32 ? "F32" : "F64"},
                    {"shape", tensor.shape},
                    {"data_offsets", {begin, static_cast<uint64_t>(buffer.size())}}};
  }
  const std::string text = header.dump();
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int b = 0; b < 8; ++b) out[b] = static_cast<char>((n >> (8 * b)) & 0xff);
  return out + text + buffer;
}

}  // namespace maas::generative
