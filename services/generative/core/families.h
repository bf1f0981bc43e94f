// The families this server serves: the registry of family file pairs, and building a model from a
// GenerativeModelSpec through it.
#ifndef MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_
#define MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "maas/generative/v1/generative.pb.h"
#include "services/generative/core/family.h"
#include "services/generative/core/model.h"

namespace maas::generative {

// Every family of this build, one registration line each (families.cc). Built once, immutable.
const FamilyRegistry& DefaultFamilies();

// Family name of a spec ("uniform", "gaussian_mixture", ...); "" when no family is set.
std::string FamilyName(const v1::GenerativeModelSpec& spec);

// Validates `spec` and builds the model with `families`. INVALID_ARGUMENT for bad parameters or no
// family; UNIMPLEMENTED for a family the registry does not hold; RESOURCE_EXHAUSTED (naming
// --max_model_bytes, ending in `action`) when the family's model_size rule puts the model above
// `max_model_bytes` (0: no limit), checked before anything is built.
absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(
    const v1::GenerativeModelSpec& spec, const FamilyRegistry& families = DefaultFamilies(),
    uint64_t max_model_bytes = 0, const std::string& action = "nothing was built");
// The same, taking *spec's large fields where the family can (Family::build_taking: each is freed
// once converted); *spec's large fields are then unspecified. For a load, which drops the spec.
absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(
    v1::GenerativeModelSpec* spec, const FamilyRegistry& families = DefaultFamilies(),
    uint64_t max_model_bytes = 0, const std::string& action = "nothing was built");

}  // namespace maas::generative

#endif  // MAAS_SERVICES_GENERATIVE_CORE_FAMILIES_H_
