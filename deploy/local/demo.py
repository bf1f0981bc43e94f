"""Waits until the local stack is SERVING, then creates the demo models on first start.

Run by deploy/local/run.sh with the project virtualenv; talks to the gateway like any client would.
"""
import argparse
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2, discriminative_pb2_grpc
from maas.gateway.v1 import gateway_pb2_grpc
from maas.generative.v1 import generative_pb2, generative_pb2_grpc


def wait_serving(target, deadline):
    channel = grpc.insecure_channel(target)
    stub = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"demo: {target} did not become SERVING in time")
        time.sleep(0.2)


def create_demo_models(gateway, corpus):
    channel = grpc.insecure_channel(gateway)
    models = gateway_pb2_grpc.GatewayStub(channel).ListModels(common_pb2.ListModelsRequest(), timeout=10)
    names = {m.name for m in models.models}
    if "demo-uniform" not in names:
        spec = generative_pb2.GenerativeModelSpec(uniform=generative_pb2.UniformSpec(low=[0.0, -1.0], high=[1.0, 1.0]))
        generative_pb2_grpc.GenerativeServiceStub(channel).CreateModel(
            generative_pb2.CreateModelRequest(name="demo-uniform", spec=spec,
                                              description="demo: uniform box [0,1] x [-1,1]"), timeout=10)
        print("demo: created demo-uniform")
    if "demo-text" not in names:
        examples = []
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    label, text = line.split("\t", 1)
                    examples.append(discriminative_pb2.LabeledText(text=text, label=label))
        config = discriminative_pb2.TrainConfig(name="demo-text", description="demo: sports / tech / food")
        requests = [discriminative_pb2.TrainRequest(config=config),
                    discriminative_pb2.TrainRequest(batch=discriminative_pb2.TextBatch(examples=examples))]
        discriminative_pb2_grpc.DiscriminativeServiceStub(channel).Train(iter(requests), timeout=30)
        print("demo: trained demo-text")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", nargs="+", required=True, help="host:port of every server to wait for")
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    for target in args.targets:
        wait_serving(target, deadline)
    create_demo_models(args.gateway, args.corpus)


if __name__ == "__main__":
    main()
