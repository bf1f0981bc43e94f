"""Partial training on two maas-discriminative replicas sharing one model directory (the documented shared-volume
deployment), with scikit-learn's partial_fit as the oracle.

An audit found acknowledged partial Trains lost there: each replica checked that the version it continued was still
the latest by listing the complete versions, so two writes whose commits overlapped both passed (a reserved version
is not complete yet), and the later one continued the version before the earlier one's. 626 documents acknowledged,
163 in the final model. Now the store checks, right before the version becomes visible, that no version between the
continued one and the new one is complete or being written.

Clients train the same model at once, each call sent to the other replica than the last, retrying on ABORTED as the
proto says. Afterwards every acknowledged version must hold exactly the documents of the acknowledged calls up to it
(MultinomialNB counts are integers: order-free), and the latest all of them.
"""

import random
import threading
import time

import grpc
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas_testing import TIMEOUT, channel_to, from_matrix, poll_until, ref, start_discriminative, wait_serving

CLASSES = ["a", "b", "c"]
N_FEATURES = 256
CLIENTS = 4
CALLS_EACH = 6


def partial_train(stub, name, texts, labels):
    config = pb.TrainConfig(name=name, partial=True, classes=CLASSES, vectorizer=pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=N_FEATURES, alternate_sign=False, norm=pb.NORM_NONE)),
        classifier=pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=1.0)))
    examples = [pb.LabeledText(text=t, label=l) for t, l in zip(texts, labels)]
    return stub.Train(iter([pb.TrainRequest(config=config), pb.TrainRequest(batch=pb.TextBatch(examples=examples))]),
                      timeout=TIMEOUT)


def test_concurrent_partial_trains_on_two_replicas_lose_nothing(tmp_path):
    shared = tmp_path / "models"
    replicas = [start_discriminative(shared, extra=["--threads", "4", "--poll_seconds", "1"]) for _ in range(2)]
    channels = [channel_to(r) for r in replicas]
    for channel in channels:
        wait_serving(channel)
    stubs = [discriminative_pb2_grpc.DiscriminativeServiceStub(c) for c in channels]

    rng = np.random.default_rng(20261204)
    words = [f"w{i}" for i in range(300)]
    batches = {}
    for c in range(CLIENTS):
        for k in range(CALLS_EACH):
            n = int(rng.integers(5, 30))
            batches[c, k] = ([" ".join(rng.choice(words, size=int(rng.integers(1, 12)))) for _ in range(n)],
                             [CLASSES[int(rng.integers(3))] for _ in range(n)])
    acknowledged, failures = [], []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(c):
        pick = random.Random(c)
        turn = c
        start.wait()
        for k in range(CALLS_EACH):
            for _ in range(300):
                turn += 1
                try:
                    response = partial_train(stubs[turn % 2], "shared", *batches[c, k])
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.ABORTED:
                        time.sleep(pick.random() * 0.02)
                        continue
                    with lock:
                        failures.append((c, k, e.code(), e.details()))
                    return
                with lock:
                    acknowledged.append((response.info.version, c, k))
                break
            else:
                with lock:
                    failures.append((c, k, "still ABORTED after 300 tries"))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(acknowledged) == CLIENTS * CALLS_EACH
    versions = sorted(v for v, _, _ in acknowledged)
    assert len(set(versions)) == len(versions), versions

    hashing = HashingVectorizer(n_features=N_FEATURES, alternate_sign=False, norm=None)
    texts, labels = [], []
    for version, c, k in sorted(acknowledged):
        texts += batches[c, k][0]
        labels += batches[c, k][1]
        oracle = MultinomialNB(alpha=1.0)
        oracle.partial_fit(hashing.transform(texts), labels, classes=CLASSES)
        for stub in stubs:  # a pinned version reads the same on both replicas
            spec = poll_until(lambda: stub.GetModel(pb.GetModelRequest(model=ref("shared", version)),
                                                    timeout=TIMEOUT).spec, 10.0, f"version {version}")
            assert np.array_equal(np.array(spec.classifier.class_count), oracle.class_count_), \
                (version, np.array(spec.classifier.class_count), oracle.class_count_)
            assert np.array_equal(from_matrix(spec.classifier.feature_count), oracle.feature_count_), version

    def latest_is_last_acknowledged():  # each replica sees the other's writes within --poll_seconds
        for stub in stubs:
            info = stub.GetModel(pb.GetModelRequest(model=ref("shared")), timeout=TIMEOUT).info
            assert info.version == versions[-1], (info.version, versions[-1])
    poll_until(latest_is_last_acknowledged, 10.0, "both replicas serving the last acknowledged version")

    for channel in channels:
        channel.close()
    for replica in replicas:
        assert replica.stop() == 0
