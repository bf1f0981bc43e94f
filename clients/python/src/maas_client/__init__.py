"""maas_client: typed Python client of maas (model as a service).

    from maas_client import GenerativeClient, DiscriminativeClient, Models

numpy in and out; every call has a deadline (timeout=, default the connection's), but for the streams whose length
the caller sets (sample, sample_batches, classify_stream: none unless given one); gRPC failures raise
maas_client.errors.MaasError subclasses; TLS, mutual TLS and bearer tokens through Connection's options.
maas_client.sklearn exports fitted scikit-learn models; `python -m maas_client --help` is the command line.
"""

from maas_client.connection import Connection, Stream
from maas_client.discriminative import DiscriminativeClient
from maas_client.errors import (CancelledError, DataLossError, DeadlineExceededError, FailedPreconditionError,
                                InvalidArgumentError, MaasError, NotFoundError, PermissionDeniedError,
                                ResourceExhaustedError, UnauthenticatedError, UnavailableError, UnimplementedError)
from maas_client._text_wire import pack_texts
from maas_client.generative import GenerativeClient
from maas_client.models import Models
from maas_client.types import (Estimate, Evaluation, FitResult, ModelDetails, ModelInfo, ModelList, Predictions,
                               SampleBatch, TrainResult, UnreadableVersion, WeightStatistics)

__version__ = "0.1.0"

__all__ = [
    "CancelledError", "Connection", "DataLossError", "DeadlineExceededError", "DiscriminativeClient", "Estimate",
    "Evaluation", "FailedPreconditionError", "FitResult", "GenerativeClient", "InvalidArgumentError", "MaasError",
    "ModelDetails", "ModelInfo", "ModelList", "Models", "NotFoundError", "PermissionDeniedError", "Predictions",
    "ResourceExhaustedError", "SampleBatch", "Stream", "TrainResult", "UnauthenticatedError", "UnavailableError",
    "UnimplementedError", "UnreadableVersion", "WeightStatistics", "pack_texts",
]
