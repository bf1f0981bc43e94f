// Status propagation macros (Abseil 20220623 has none of its own).
//
//   MAAS_RETURN_IF_ERROR(DoThing());                 // returns the status if not OK
//   MAAS_ASSIGN_OR_RETURN(auto value, ComputeIt());  // unwraps a StatusOr or returns its status
#ifndef MAAS_COMMON_STATUS_STATUS_MACROS_H_
#define MAAS_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MAAS_STATUS_CONCAT_INNER_(a, b) a##b
#define MAAS_STATUS_CONCAT_(a, b) MAAS_STATUS_CONCAT_INNER_(a, b)

#define MAAS_RETURN_IF_ERROR(expr)               \
  do {                                           \
    const ::absl::Status maas_status_ = (expr);  \
    if (!maas_status_.ok()) return maas_status_; \
  } while (false)

#define MAAS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return statusor.status();           \
  lhs = std::move(statusor).value()

#define MAAS_ASSIGN_OR_RETURN(lhs, rexpr) \
  MAAS_ASSIGN_OR_RETURN_IMPL_(MAAS_STATUS_CONCAT_(maas_statusor_, __LINE__), lhs, rexpr)

#endif  // MAAS_COMMON_STATUS_STATUS_MACROS_H_
