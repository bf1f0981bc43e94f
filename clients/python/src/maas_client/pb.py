"""The generated protobuf messages of the maas contracts (typed by their .pyi stubs).

    from maas_client.pb import generative
    spec = generative.GenerativeModelSpec(uniform=generative.UniformSpec(low=[0.0], high=[1.0]))
"""

from maas_client._proto.maas.common.v1 import common_pb2 as common
from maas_client._proto.maas.discriminative.v1 import discriminative_pb2 as discriminative
from maas_client._proto.maas.gateway.v1 import gateway_pb2 as gateway
from maas_client._proto.maas.generative.v1 import generative_pb2 as generative

__all__ = ["common", "discriminative", "gateway", "generative"]
