// Conversions between a grpc::ByteBuffer and the bytes it carries, for the few messages the gateway
// reads or writes itself (health, reflection, the Gateway service, backend health checks); proxied
// calls never go through them.
#ifndef MAAS_SERVICES_GATEWAY_BYTE_BUFFERS_H_
#define MAAS_SERVICES_GATEWAY_BYTE_BUFFERS_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <string>
#include <vector>

namespace maas::gateway {

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

}  // namespace maas::gateway

#endif  // MAAS_SERVICES_GATEWAY_BYTE_BUFFERS_H_
