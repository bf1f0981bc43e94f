// The hand-written SampleBatch wire bytes (adapter/sample_wire.h) against protobuf's own
// serialisation of the same message, and the served Sample stream against the core's SampleStream
// serialised by protobuf.
#include "services/generative/adapter/sample_wire.h"

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/adapter/dispatcher.h"
#include "common/exec/worker_pool.h"
#include "common/registry/model_repository.h"
#include "common/server/server.h"
#include "common/store/memory_model_store.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/generative/adapter/generative_service.h"
#include "services/generative/core/generative_core.h"
#include "tests/common/adapter/raw_call.h"
#include "tests/services/generative/service_stack.h"

namespace maas::generative {
namespace {

using google::protobuf::util::MessageDifferencer;

RowMatrixXd Filled(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 3.0);
  RowMatrixXd m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

std::string Encoded(const SampleBatchView& view) {
  grpc::ByteBuffer buffer;
  EncodeSampleBatch(view, &buffer);
  return testing::ToString(buffer);
}

// Every combination of shapes (empty, one row, not a multiple of the 8-row blocks, a 784-wide
// batch), latents absent / L wide / one wide, and scalar fields zero (omitted on the wire), small
// and at their largest (10-byte varints, a negative model_version).
TEST_CASE("Hand-written SampleBatch bytes equal protobuf's serialisation of the same message") {
  std::mt19937_64 rng(20261202);
  const uint64_t kMax = std::numeric_limits<uint64_t>::max();
  int cases = 0;
  for (const Eigen::Index rows : {0, 1, 7, 8, 13, 100}) {
    for (const Eigen::Index cols : {0, 1, 3, 784}) {
      for (const int latent_width : {-1, 1, 2, 50}) {  // -1: no latents field
        const RowMatrixXd x = Filled(rows, cols, rng);
        const RowMatrixXd latents = Filled(rows, std::max(latent_width, 0), rng);
        for (const uint64_t start_index : {uint64_t{0}, uint64_t{1}, uint64_t{300}, kMax}) {
          for (const uint64_t seed : {uint64_t{0}, uint64_t{42}, kMax}) {
            for (const int64_t version : {int64_t{0}, int64_t{3}, int64_t{-1}}) {
              SampleBatchView view;
              view.start_index = start_index;
              view.seed = seed;
              view.model_version = version;
              view.x = &x;
              view.latents = latent_width < 0 ? nullptr : &latents;
              v1::SampleBatch expected;
              SampleBatchToProto(view, &expected);
              const std::string bytes = Encoded(view);
              INFO("rows " << rows << " cols " << cols << " latents " << latent_width
                           << " start_index " << start_index << " seed " << seed << " version "
                           << version);
              REQUIRE(bytes == expected.SerializeAsString());
              v1::SampleBatch parsed;
              REQUIRE(parsed.ParseFromString(bytes));
              REQUIRE(MessageDifferencer::Equals(parsed, expected));
              REQUIRE(parsed.x().values_size() == rows * cols);
              // Values in the wire's row-major order, element by element.
              int64_t misplaced = 0;
              for (Eigen::Index i = 0; i < rows; ++i) {
                for (Eigen::Index j = 0; j < cols; ++j) {
                  misplaced += parsed.x().values(static_cast<int>(i * cols + j)) != x(i, j);
                }
              }
              REQUIRE(misplaced == 0);
              ++cases;
            }
          }
        }
      }
    }
  }
  CHECK(cases == 6 * 4 * 4 * 4 * 3 * 3);
}

// Signed zeros, infinities, NaN payloads and subnormals travel as their exact bits.
TEST_CASE("Hand-written SampleBatch bytes carry every double bit pattern unchanged") {
  RowMatrixXd x(9, 2);
  x << -0.0, 0.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
      std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::denorm_min(),
      std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(), 1.0, -1.0, 1e-300,
      1e300, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6;
  SampleBatchView view;
  view.x = &x;
  view.seed = 9;
  v1::SampleBatch expected;
  SampleBatchToProto(view, &expected);
  CHECK(Encoded(view) == expected.SerializeAsString());
}

// The message refers to the sampled values in place and keeps them alive: it holds a reference to
// the batch's owner until the last copy of the buffer is gone, and reads the values as they are.
TEST_CASE("An encoded SampleBatch shares ownership of the sampled values until it is destroyed") {
  std::mt19937_64 rng(3);
  auto values = std::make_shared<SampleBatchValues>();
  values->x = Filled(40, 784, rng);
  values->latents = Filled(40, 2, rng);
  SampleBatchView view;
  view.x = &values->x;
  view.latents = &values->latents;
  view.owner = values;
  v1::SampleBatch expected;
  SampleBatchToProto(view, &expected);
  const std::weak_ptr<SampleBatchValues> watch = values;
  values.reset();
  auto buffer = std::make_unique<grpc::ByteBuffer>();
  EncodeSampleBatch(view, buffer.get());
  view = SampleBatchView();  // only the buffer holds the values now
  REQUIRE(!watch.expired());
  grpc::ByteBuffer copy(*buffer);  // shares the slices
  buffer.reset();
  REQUIRE(!watch.expired());
  CHECK(testing::ToString(copy) == expected.SerializeAsString());
  copy.Clear();
  CHECK(watch.expired());
}

// The served path (sampling on the pool, serialisation and writes on the service's writer thread,
// two batches in flight) against the core's SampleStream serialised by protobuf, message by
// message, for a family with continuous latents and one whose latent is a component index.
TEST_CASE("Served Sample messages are byte for byte the core's batches serialised by protobuf") {
  Stack stack;
  GenerativeCore& core = stack.core;
  const std::shared_ptr<grpc::Channel>& channel = stack.channel;

  std::mt19937_64 rng(7);
  const int d = 30, l = 3, k = 4;
  v1::CreateModelRequest ppca;
  ppca.set_name("ppca");
  {
    v1::PpcaSpec* spec = ppca.mutable_spec()->mutable_ppca();
    const Eigen::MatrixXd w = Filled(d, l, rng);
    spec->mutable_loadings()->set_rows(d);
    spec->mutable_loadings()->set_cols(l);
    for (int i = 0; i < d; ++i) {
      for (int j = 0; j < l; ++j) spec->mutable_loadings()->add_values(w(i, j));
      spec->add_mean(0.1 * i);
    }
    spec->set_noise_variance(0.5);
  }
  v1::CreateModelRequest mixture;
  mixture.set_name("mixture");
  {
    v1::GaussianMixtureSpec* spec = mixture.mutable_spec()->mutable_gaussian_mixture();
    spec->set_covariance_type(v1::DIAG);
    spec->mutable_means()->set_rows(k);
    spec->mutable_means()->set_cols(d);
    spec->mutable_covariances()->set_rows(k);
    spec->mutable_covariances()->set_cols(d);
    for (int c = 0; c < k; ++c) {
      spec->add_weights(1.0 / k);
      for (int j = 0; j < d; ++j) {
        spec->mutable_means()->add_values(c - 0.05 * j);
        spec->mutable_covariances()->add_values(0.5 + 0.01 * (c + j));
      }
    }
  }
  auto stub = v1::GenerativeService::NewStub(channel);
  for (const v1::CreateModelRequest& create : {ppca, mixture}) {
    grpc::ClientContext context;
    v1::CreateModelResponse response;
    REQUIRE(stub->CreateModel(&context, create, &response).ok());
  }

  for (const char* name : {"ppca", "mixture"}) {
    for (const bool latents : {false, true}) {
      for (const uint32_t batch_size : {1u, 7u, 0u}) {
        v1::SampleRequest request;
        request.mutable_model()->set_name(name);
        request.set_num_samples(300);
        request.set_start_index(11);
        request.set_seed(5);
        request.set_batch_size(batch_size);
        request.set_include_latents(latents);
        auto served = testing::RawStreamCall(
            channel, "/maas.generative.v1.GenerativeService/Sample", {request.SerializeAsString()});
        INFO(name << " latents " << latents << " batch_size " << batch_size);
        REQUIRE(served.status.ok());
        auto stream = core.StartSample(request);
        REQUIRE(stream.ok());
        std::vector<std::string> expected;
        v1::SampleBatch batch;
        while ((*stream)->Next(&batch)) expected.push_back(batch.SerializeAsString());
        REQUIRE(served.responses.size() == expected.size());
        CHECK(served.responses.size() ==
              (batch_size == 0 ? 1u : (300 + batch_size - 1) / batch_size));
        for (size_t i = 0; i < expected.size(); ++i) {
          INFO("message " << i);
          REQUIRE(served.responses[i] == expected[i]);
        }
        REQUIRE(batch.ParseFromString(served.responses.back()));
        CHECK(batch.latents().cols() == (latents ? (std::string(name) == "ppca" ? l : 1) : 0));
      }
    }
  }
}

}  // namespace
}  // namespace maas::generative
