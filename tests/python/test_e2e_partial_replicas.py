"""Partial training on maas-discriminative replicas sharing one model directory (the documented shared-volume
deployment), with scikit-learn's partial_fit as the oracle.

An audit found acknowledged partial Trains lost there: each replica checked that the version it continued was still
the latest by listing the complete versions, so two writes whose commits overlapped both passed (a reserved version
is not complete yet), and the later one continued the version before the earlier one's. 626 documents acknowledged,
163 in the final model. The store then checked, right before the version became visible, that no version between the
continued one and the new one was complete or being written; a review found that still losing batches when a writer
stalled after reserving its number (or its temp file was visible for an instant before it was locked): a
higher-numbered write saw nothing in between and committed, then so did the stalled one. Now a continuing write
checks and commits under a lock on the model directory, refusing if any later version is complete.

Clients train the same model at once, each call sent to the next replica, retrying on ABORTED as the
proto says. Afterwards every acknowledged version must hold exactly the documents of the acknowledged calls up to it
(MultinomialNB counts are integers: order-free), and the latest all of them.
"""

import contextlib
import random
import threading
import time

import grpc
import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas.discriminative.v1 import discriminative_pb2_grpc
from maas_testing import TIMEOUT, channel_to, expect_rpc_error, from_matrix, poll_until, ref, start_discriminative, \
    wait_serving

CLASSES = ["a", "b", "c"]
N_FEATURES = 256
REPLICAS = 4
CLIENTS = 8
CALLS_EACH = 60  # the review's stalled-writer race showed in 2 runs out of 2 at this size, never at 6


def partial_train(stub, name, texts, labels):
    config = pb.TrainConfig(name=name, partial=True, classes=CLASSES, vectorizer=pb.VectorizerConfig(
        hashing=pb.HashingVectorizerConfig(n_features=N_FEATURES, alternate_sign=False, norm=pb.NORM_NONE)),
        classifier=pb.ClassifierConfig(multinomial_nb=pb.MultinomialNbConfig(alpha=1.0)))
    examples = [pb.LabeledText(text=t, label=l) for t, l in zip(texts, labels)]
    return stub.Train(iter([pb.TrainRequest(config=config), pb.TrainRequest(batch=pb.TextBatch(examples=examples))]),
                      timeout=TIMEOUT)


@contextlib.contextmanager
def replicas_sharing(model_dir, count, extra):
    """`count` maas-discriminative replicas on one model directory: yields a stub per replica, then requires each to
    exit cleanly."""
    replicas = [start_discriminative(model_dir, extra=extra) for _ in range(count)]
    channels = [channel_to(r) for r in replicas]
    for channel in channels:
        wait_serving(channel)
    yield [discriminative_pb2_grpc.DiscriminativeServiceStub(c) for c in channels]
    for channel in channels:
        channel.close()
    for replica in replicas:
        assert replica.stop() == 0


def assert_counts_as_partial_fit(spec, texts, labels, what):
    """The stored MultinomialNB's counts equal scikit-learn's partial_fit over `texts` (integers: exact)."""
    oracle = MultinomialNB(alpha=1.0)
    oracle.partial_fit(HashingVectorizer(n_features=N_FEATURES, alternate_sign=False, norm=None).transform(texts),
                       labels, classes=CLASSES)
    assert np.array_equal(np.array(spec.classifier.class_count), oracle.class_count_), \
        (what, np.array(spec.classifier.class_count), oracle.class_count_)
    assert np.array_equal(from_matrix(spec.classifier.feature_count), oracle.feature_count_), what


def test_concurrent_partial_trains_on_replicas_lose_nothing(tmp_path):
    # Without polling, a replica reads the version list on every call (the most commits racing each other, so the
    # race shows most often); the test below covers the polling cache.
    with replicas_sharing(tmp_path / "models", REPLICAS, ["--threads", "4", "--poll_seconds", "0"]) as stubs:
        check_concurrent_partial_trains(stubs)


def check_concurrent_partial_trains(stubs):
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
                    response = partial_train(stubs[turn % REPLICAS], "shared", *batches[c, k])
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

    texts, labels = [], []
    for version, c, k in sorted(acknowledged):
        texts += batches[c, k][0]
        labels += batches[c, k][1]
        for stub in stubs:  # a pinned version reads the same on every replica
            spec = poll_until(lambda: stub.GetModel(pb.GetModelRequest(model=ref("shared", version)),
                                                    timeout=TIMEOUT).spec, 10.0, f"version {version}")
            assert_counts_as_partial_fit(spec, texts, labels, version)

    def latest_is_last_acknowledged():
        for stub in stubs:
            info = stub.GetModel(pb.GetModelRequest(model=ref("shared")), timeout=TIMEOUT).info
            assert info.version == versions[-1], (info.version, versions[-1])
    poll_until(latest_is_last_acknowledged, 10.0, "every replica serving the last acknowledged version")


def test_partial_train_refused_on_a_stale_replica_succeeds_on_retry(tmp_path):
    """The review also found a replica that refused a partial Train (its cached latest was stale: the other replica
    had written since) refusing every retry until its next poll, because a refused write left the cache as it was."""
    with replicas_sharing(tmp_path / "models", 2, ["--poll_seconds", "3600"]) as (first, second):
        batches = [(["w1 w2", "w3"], ["a", "b"]), (["w2 w4", "w1 w1"], ["c", "a"]), (["w5", "w3 w3"], ["b", "b"])]
        assert partial_train(first, "stale", *batches[0]).info.version == 1
        assert second.GetModel(pb.GetModelRequest(model=ref("stale")), timeout=TIMEOUT).info.version == 1  # cached
        assert partial_train(first, "stale", *batches[1]).info.version == 2
        with expect_rpc_error(grpc.StatusCode.ABORTED, "version 2"):  # continues its cached version 1
            partial_train(second, "stale", *batches[2])
        retried = partial_train(second, "stale", *batches[2])  # at once, long before the next poll
        assert retried.info.version == 4  # 3 was the refused write's number
        spec = second.GetModel(pb.GetModelRequest(model=ref("stale")), timeout=TIMEOUT).spec
        assert_counts_as_partial_fit(spec, sum((b[0] for b in batches), []), sum((b[1] for b in batches), []),
                                     "latest")
