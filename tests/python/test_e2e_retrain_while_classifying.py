"""Retraining never blocks classification (issue 8 item 6), against the real maas-discriminative binary.

Threads keep classifying model "live" while a large Train of a new version of it runs. Asserted by events, never
by durations: every call succeeds; every answer is exactly what its version answers (each version's answer is
taken with an explicit version number before / after); each thread sees version 1 until it sees version 2 and
never version 1 again; calls complete while the Train's fit runs (between the last message sent and the
response); and once the Train answered, every thread meets version 2. The server runs with one worker thread,
the hardest case: a fit holding the only worker would stop every classification until it ends (it did, before
Train streams got a pool of their own, --train_threads).
"""

import threading

import grpc
import numpy as np
import pytest

from maas.discriminative.v1 import discriminative_pb2 as pb
from maas_testing import TIMEOUT, ref, serve_discriminative

PROBES = ["the old cat sat", "a new dog barked loudly", "nothing known here", "cat dog cat"]
N_THREADS = 4
N_BATCHES = 8


@pytest.fixture(scope="module")
def stub(tmp_path_factory):
    yield from serve_discriminative(tmp_path_factory.mktemp("disc-retrain"), extra=["--threads", "1"])


def big_corpus(n_docs, seed=7):
    """Many documents over a large vocabulary, so the fit of version 2 takes a while (sorting and pruning
    hundreds of thousands of n-grams)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i:06d}" for i in range(30_000)] + ["cat", "dog", "old", "new"])
    words = rng.choice(vocab, size=(n_docs, 30))
    texts = [" ".join(row) for row in words]
    labels = [f"new{int(i)}" for i in rng.integers(0, 3, size=n_docs)]
    return texts, labels


def test_classification_continues_on_the_old_version_while_training(stub):
    config = pb.TrainConfig(name="live")
    small = [pb.LabeledText(text=t, label=l) for t, l in
             [("the old cat sat", "old-a"), ("a dog barked", "old-b"), ("cat cat", "old-a"), ("dog", "old-b")]]
    stub.Train(iter([pb.TrainRequest(config=config), pb.TrainRequest(batch=pb.TextBatch(examples=small))]),
               timeout=TIMEOUT)

    def answer(version):
        r = stub.Classify(pb.ClassifyRequest(model=ref("live", version), texts=PROBES), timeout=TIMEOUT)
        return r.model_version, [(c.label, [(s.label, s.probability) for s in c.scores]) for c in r.results]

    expected = {1: answer(1)[1]}

    completed = [0]
    lock = threading.Lock()
    stop = threading.Event()
    errors = []
    seen = [[] for _ in range(N_THREADS)]  # per thread: the versions answered, in order
    answers = [[] for _ in range(N_THREADS)]

    def classify_loop(k):
        while not stop.is_set():
            try:
                version, result = answer(0)
            except grpc.RpcError as e:  # every call must succeed
                errors.append(f"thread {k}: {e.code()} {e.details()}")
                return
            seen[k].append(version)
            answers[k].append((version, result))
            with lock:
                completed[0] += 1
            if version == 2 and train_done.is_set() and seen[k].count(2) >= 3:
                return

    train_sent, train_done = threading.Event(), threading.Event()
    at_sent = [None]
    threads = [threading.Thread(target=classify_loop, args=(k,), daemon=True) for k in range(N_THREADS)]
    for t in threads:
        t.start()

    texts, labels = big_corpus(15_000)

    def requests():
        yield pb.TrainRequest(config=config)
        size = len(texts) // N_BATCHES
        for start in range(0, len(texts), size):
            yield pb.TrainRequest(batch=pb.TextBatch(examples=[
                pb.LabeledText(text=t, label=l) for t, l in zip(texts[start:start + size],
                                                                labels[start:start + size])]))
        with lock:
            at_sent[0] = completed[0]
        train_sent.set()

    config = pb.TrainConfig(name="live", vectorizer=pb.VectorizerConfig(count=pb.CountVectorizerConfig(
        text=pb.TextOptions(ngram_min=1, ngram_max=2))))
    response = stub.Train(requests(), timeout=300)
    with lock:
        at_done = completed[0]
    train_done.set()
    assert response.info.version == 2
    for t in threads:
        t.join(timeout=TIMEOUT)
    stop.set()
    assert not errors, errors
    assert all(not t.is_alive() for t in threads), "a classifying thread never met version 2"

    expected[2] = answer(2)[1]
    assert expected[1] != expected[2]
    for k in range(N_THREADS):
        versions = seen[k]
        assert versions and set(versions) <= {1, 2}
        first_new = versions.index(2)
        assert all(v == 1 for v in versions[:first_new]) and all(v == 2 for v in versions[first_new:]), \
            f"thread {k} went back to version 1 after version 2: {versions}"
        for version, result in answers[k]:
            assert result == expected[version], f"thread {k}: an answer of version {version} differs from it"
    # Classification went on while the last batches were added and version 2 was fitted (after the last
    # message was sent, before the response). Were training work queued on the classification worker, each
    # thread could finish about one call per training task there (one per batch still to add, then the fit):
    # 32 calls in all when this was measured that way, against about 10,000 on a pool of its own.
    assert at_sent[0] is not None
    training_tasks = N_BATCHES + 2
    assert at_done - at_sent[0] > N_THREADS * training_tasks, \
        f"only {at_done - at_sent[0]} classifications completed while version 2 was being fitted"
