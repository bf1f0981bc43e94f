// Conversions between a grpc::ByteBuffer and the bytes it carries, for the few messages read or
// written as bytes (health, reflection, the gateway's own service and backend health checks); the
// gateway's proxied calls never go through them.
#ifndef MAAS_COMMON_ADAPTER_BYTE_BUFFERS_H_
#define MAAS_COMMON_ADAPTER_BYTE_BUFFERS_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <string>
#include <vector>

namespace maas::adapter {

// The bytes of `buffer` (empty when it cannot be read).
inline std::string ByteBufferToString(const grpc::ByteBuffer& buffer) {
  std::string bytes;
  std::vector<grpc::Slice> slices;
  if (buffer.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return bytes;
}

// A buffer holding a copy of `bytes`.
inline grpc::ByteBuffer ByteBufferFromString(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace maas::adapter

#endif  // MAAS_COMMON_ADAPTER_BYTE_BUFFERS_H_
