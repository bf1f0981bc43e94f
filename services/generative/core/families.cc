#include "services/generative/core/families.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/generative/core/bernoulli_mixture.h"
#include "services/generative/core/factor_analysis.h"
#include "services/generative/core/gaussian_mixture.h"
#include "services/generative/core/mlp_decoder.h"
#include "services/generative/core/ppca.h"
#include "services/generative/core/uniform.h"

namespace maas::generative {
namespace {

FamilyRegistry BuildDefaultFamilies() {
  FamilyRegistry registry;
  registry.Register(UniformFamily());
  registry.Register(GaussianMixtureFamily());
  registry.Register(PpcaFamily());
  registry.Register(FactorAnalysisFamily());
  registry.Register(BernoulliMixtureFamily());
  registry.Register(MlpDecoderFamily());
  return registry;
}

}  // namespace

const FamilyRegistry& DefaultFamilies() {
  static const FamilyRegistry* const kFamilies = new FamilyRegistry(BuildDefaultFamilies());
  return *kFamilies;
}

std::string FamilyName(const v1::GenerativeModelSpec& spec) {
  // The oneof's field name is the family name (GenerativeModelSpec's contract).
  const google::protobuf::OneofDescriptor* oneof =
      v1::GenerativeModelSpec::descriptor()->FindOneofByName("family");
  const google::protobuf::FieldDescriptor* field =
      spec.GetReflection()->GetOneofFieldDescriptor(spec, oneof);
  return field == nullptr ? "" : field->name();
}

namespace {

// The family of `spec`, or the status MakeModel answers when none serves it.
absl::StatusOr<const Family*> FamilyOf(const v1::GenerativeModelSpec& spec,
                                       const FamilyRegistry& families) {
  if (spec.family_case() == v1::GenerativeModelSpec::FAMILY_NOT_SET) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec: no family set; set one of the families this server serves: ", families.Names()));
  }
  const Family* family = families.FindBySpec(spec.family_case());
  if (family == nullptr) {
    return absl::UnimplementedError(
        absl::StrCat("family '", FamilyName(spec),
                     "' is not served by this server (it serves: ", families.Names(), ")"));
  }
  return family;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(
    const v1::GenerativeModelSpec& spec, const FamilyRegistry& families, uint64_t max_model_bytes,
    const std::string& action) {
  MAAS_ASSIGN_OR_RETURN(const Family* family, FamilyOf(spec, families));
  MAAS_RETURN_IF_ERROR(CheckModelSize(*family, spec, max_model_bytes, action));
  absl::StatusOr<std::unique_ptr<GenerativeModel>> model = family->build(spec);
  if (!model.ok()) return model.status();
  return std::shared_ptr<const GenerativeModel>(*std::move(model));
}

absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(v1::GenerativeModelSpec* spec,
                                                                 const FamilyRegistry& families,
                                                                 uint64_t max_model_bytes,
                                                                 const std::string& action) {
  MAAS_ASSIGN_OR_RETURN(const Family* family, FamilyOf(*spec, families));
  MAAS_RETURN_IF_ERROR(CheckModelSize(*family, *spec, max_model_bytes, action));
  absl::StatusOr<std::unique_ptr<GenerativeModel>> model =
      family->build_taking ? family->build_taking(spec) : family->build(*spec);
  if (!model.ok()) return model.status();
  return std::shared_ptr<const GenerativeModel>(*std::move(model));
}

}  // namespace maas::generative
