#include "services/generative/core/families.h"

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/generative/core/mlp_decoder.h"
#include "services/generative/core/uniform.h"

namespace maas::generative {

std::string FamilyName(const v1::GenerativeModelSpec& spec) {
  switch (spec.family_case()) {
    case v1::GenerativeModelSpec::kUniform:
      return "uniform";
    case v1::GenerativeModelSpec::kGaussianMixture:
      return "gaussian_mixture";
    case v1::GenerativeModelSpec::kPpca:
      return "ppca";
    case v1::GenerativeModelSpec::kFactorAnalysis:
      return "factor_analysis";
    case v1::GenerativeModelSpec::kBernoulliMixture:
      return "bernoulli_mixture";
    case v1::GenerativeModelSpec::kMlpDecoder:
      return "mlp_decoder";
    case v1::GenerativeModelSpec::FAMILY_NOT_SET:
      return "";
  }
  return "";
}

absl::StatusOr<std::shared_ptr<const GenerativeModel>> MakeModel(
    const v1::GenerativeModelSpec& spec) {
  switch (spec.family_case()) {
    case v1::GenerativeModelSpec::kUniform: {
      MAAS_ASSIGN_OR_RETURN(std::unique_ptr<UniformModel> model,
                            UniformModel::Create(spec.uniform()));
      return std::shared_ptr<const GenerativeModel>(std::move(model));
    }
    case v1::GenerativeModelSpec::kMlpDecoder: {
      MAAS_ASSIGN_OR_RETURN(std::unique_ptr<MlpDecoderModel> model,
                            MlpDecoderModel::Create(spec.mlp_decoder()));
      return std::shared_ptr<const GenerativeModel>(std::move(model));
    }
    case v1::GenerativeModelSpec::FAMILY_NOT_SET:
      return absl::InvalidArgumentError(
          "spec: no family set; set one of uniform, gaussian_mixture, ppca, factor_analysis, "
          "bernoulli_mixture, "
          "mlp_decoder");
    default:
      return absl::UnimplementedError(
          absl::StrCat("family '", FamilyName(spec),
                       "' is not served yet (this server implements: "
                       "uniform, mlp_decoder); it arrives with the latent-variable "
                       "families capability"));
  }
}

}  // namespace maas::generative
