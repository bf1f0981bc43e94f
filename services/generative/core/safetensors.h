// A reader of the safetensors format (https://huggingface.co/docs/safetensors), used to import
// mlp_decoder weights:
//   bytes 0..7   N, the header length, unsigned little-endian 64-bit;
//   bytes 8..8+N a JSON object: "__metadata__" (optional, string -> string) and one entry per
//                tensor {"dtype": "F32"|"F64"|..., "shape": [d0, d1, ...], "data_offsets": [b, e]}
//                with [b, e) a byte range of the data buffer that follows the header;
//   the rest     the data buffer: little-endian values, row-major.
// Only F32 and F64 tensors are accepted (converted to double). Every malformation is an
// INVALID_ARGUMENT naming the tensor and the field.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_SAFETENSORS_H_
#define MAAS_SERVICES_GENERATIVE_CORE_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace maas::generative {

struct Tensor {
  std::string dtype;           // "F32" or "F64"
  std::vector<int64_t> shape;  // empty for a scalar
  std::vector<double> values;  // row-major, product(shape) values
};

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

// Largest header (the JSON text) ParseSafetensors accepts: 1 MiB. A decoder needs two tensors per
// layer, ~150 bytes of JSON, so this holds ~7 000 layers; larger headers are refused before they
// are parsed (the JSON tree takes up to ~60x its text).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = uint64_t{1} << 20;

// Parses a whole safetensors file. `what` names it in error messages (e.g. "spec.mlp_decoder.
// safetensors"). INVALID_ARGUMENT when: shorter than 8 bytes; the header length runs past the end
// or is above kMaxSafetensorsHeaderBytes (naming the limit, before parsing); the header is not a
// JSON object; a tensor entry lacks dtype/shape/data_offsets or has them of the wrong type; a dtype
// other than F32/F64; a negative dimension; data_offsets not [begin <= end] inside the buffer; end
// - begin != product(shape) * dtype size; tensors overlapping; a value that is NaN or infinite.
// With `read_values` false the values are neither read nor checked (Tensor::values stays empty):
// the shapes alone, for size rules.
absl::StatusOr<SafetensorsFile> ParseSafetensors(absl::string_view bytes, const std::string& what,
                                                 bool read_values = true);

// Serializes tensors (as F64, or F32 when `f32`) and metadata into the format; for tests and tools.
std::string WriteSafetensors(const std::map<std::string, Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata, bool f32 = false);

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_SAFETENSORS_H_
