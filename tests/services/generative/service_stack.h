// The generative service on a real in-process gRPC server for the adapter tests: in-memory store,
// a 2-thread worker pool, port 0 on loopback, fresh seeds fixed at 42.
#ifndef MAAS_TESTS_SERVICES_GENERATIVE_SERVICE_STACK_H_
#define MAAS_TESTS_SERVICES_GENERATIVE_SERVICE_STACK_H_

#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "common/adapter/dispatcher.h"
#include "common/exec/worker_pool.h"
#include "common/registry/model_repository.h"
#include "common/server/server.h"
#include "common/store/memory_model_store.h"
#include "services/generative/adapter/generative_service.h"
#include "services/generative/core/generative_core.h"

namespace maas::generative {

inline GenerativeCoreOptions CoreOptions(registry::ModelRepository<LoadedModel>* repository) {
  GenerativeCoreOptions options;
  options.repository = repository;
  options.fresh_seed = [] { return uint64_t{42}; };
  return options;
}

struct Stack {
  explicit Stack(int64_t max_fit_bytes = 0, adapter::StreamBudget* fit_budget = nullptr)
      : repository(&store, ParseStoredModel, absl::ZeroDuration()),
        core(CoreOptions(&repository)),
        pool({2}),
        dispatcher(&pool, {}),
        service(&core, &auth, &dispatcher, max_fit_bytes, fit_budget) {
    server::ServerOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.name = "test";
    options.log_stream = nullptr;
    auto started = server::Server::Start(options, {&service});
    REQUIRE(started.ok());
    server = *std::move(started);
    channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(server->port()),
                                  grpc::InsecureChannelCredentials());
  }
  ~Stack() { server->Shutdown(); }
  void WaitIdle() {
    const absl::Time limit = absl::Now() + absl::Seconds(30);
    while (dispatcher.in_flight() > 0 && absl::Now() < limit) absl::SleepFor(absl::Milliseconds(2));
    REQUIRE(dispatcher.in_flight() == 0);
  }

  store::MemoryModelStore store;
  registry::ModelRepository<LoadedModel> repository;
  GenerativeCore core;
  adapter::WriteAuthorizer auth;
  exec::WorkerPool pool;
  adapter::Dispatcher dispatcher;
  GenerativeServiceImpl service;
  std::unique_ptr<server::Server> server;
  std::shared_ptr<grpc::Channel> channel;
};

}  // namespace maas::generative

#endif  // MAAS_TESTS_SERVICES_GENERATIVE_SERVICE_STACK_H_
