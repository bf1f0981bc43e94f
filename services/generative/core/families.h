// From a GenerativeModelSpec to a ready GenerativeModel: validation and the family registry.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_
#define MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// Family name of a spec ("uniform", "gaussian_mixture", ...); "" when no family is set.
std::string FamilyName(const v1::GenerativeModelSpec& spec);

// Validates `spec` and builds the model. INVALID_ARGUMENT for bad parameters or no family;
// UNIMPLEMENTED for families this server does not serve yet.
absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(
    const v1::GenerativeModelSpec& spec);

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_
