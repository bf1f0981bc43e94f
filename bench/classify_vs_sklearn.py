"""Benchmark: maas-discriminative (CountVectorizer + MultinomialNB over gRPC) against scikit-learn in-process,
side by side in one script on the same random corpus.

    make bench            # or: PYTHONPATH=build/python .venv/bin/python bench/classify_vs_sklearn.py

Measures (median of --repeats runs each):
  train    maas: Train client stream (all batches) | sklearn: CountVectorizer.fit_transform + MultinomialNB.fit
  classify maas: Classify of --batch texts per call, one call after another | sklearn: transform + predict_proba
Both sides also check that they agree (labels identical, probabilities within 1e-12), so the numbers compare equal
work. maas numbers include the gRPC round trips and serialization on loopback; sklearn's do not.
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc, discriminative_pb2_grpc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def corpus(rng, docs, vocabulary_size=20000, classes=8):
    words = np.array([f"w{i:05d}" for i in range(vocabulary_size)])
    labels = rng.integers(classes, size=docs)
    texts = []
    for label in labels:
        # Zipf-like word frequencies with a class-dependent shift.
        ranks = (rng.zipf(1.3, size=rng.integers(20, 120)) + 97 * label) % vocabulary_size
        texts.append(" ".join(words[ranks]))
    return texts, [f"class-{l}" for l in labels]


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def start_server(build_dir, model_dir):
    proc = subprocess.Popen([str(build_dir / "bin" / "maas-discriminative"), "--port", "0", "--model_dir",
                             str(model_dir)], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        match = re.search(r"on port (\d+)", line)
        if match:
            return proc, int(match.group(1))
    raise SystemExit("maas-discriminative did not start")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_docs", type=int, default=20000)
    parser.add_argument("--test_docs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000, help="texts per Classify call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--build_dir", default=os.environ.get("MAAS_BUILD_DIR", ROOT / "build"))
    args = parser.parse_args()
    build_dir = pathlib.Path(args.build_dir)

    rng = np.random.default_rng(1)
    train_texts, train_labels = corpus(rng, args.train_docs)
    test_texts, _ = corpus(rng, args.test_docs)

    def sklearn_train():
        cv = CountVectorizer()
        return cv, MultinomialNB().fit(cv.fit_transform(train_texts), train_labels)

    cv, nb = sklearn_train()
    sk_train = median_seconds(sklearn_train, args.repeats)
    sk_classify = median_seconds(lambda: nb.predict_proba(cv.transform(test_texts)), args.repeats)

    with tempfile.TemporaryDirectory() as model_dir:
        proc, port = start_server(build_dir, model_dir)
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[
                ("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)])
            stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)

            def maas_train():
                requests = [disc.TrainRequest(config=disc.TrainConfig(name="bench"))]
                for start in range(0, len(train_texts), 5000):
                    batch = disc.TextBatch(examples=[disc.LabeledText(text=t, label=l) for t, l in
                                                     zip(train_texts[start:start + 5000],
                                                         train_labels[start:start + 5000])])
                    requests.append(disc.TrainRequest(batch=batch))
                return stub.Train(iter(requests), timeout=600)

            maas_train()
            ma_train = median_seconds(maas_train, args.repeats)
            model = common_pb2.ModelRef(name="bench")

            def maas_classify():
                out = []
                for start in range(0, len(test_texts), args.batch):
                    out.extend(stub.Classify(disc.ClassifyRequest(model=model, texts=test_texts[start:start + args.batch]),
                                             timeout=600).results)
                return out

            results = maas_classify()
            ma_classify = median_seconds(maas_classify, args.repeats)
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    x = cv.transform(test_texts)
    assert [r.label for r in results] == nb.predict(x).tolist(), "maas and scikit-learn disagree on labels"
    assert np.allclose([[s.probability for s in r.scores] for r in results], nb.predict_proba(x), rtol=0, atol=1e-12)

    print(f"corpus: {args.train_docs} train docs, {args.test_docs} test docs, {len(cv.vocabulary_)} features, "
          f"{len(nb.classes_)} classes; sklearn {__import__('sklearn').__version__}, numpy {np.__version__}")
    print(f"{'':10}{'maas (gRPC)':>14}{'scikit-learn':>14}{'speed-up':>10}")
    print(f"{'train':10}{ma_train:>13.3f}s{sk_train:>13.3f}s{sk_train / ma_train:>9.1f}x")
    print(f"{'classify':10}{ma_classify:>13.3f}s{sk_classify:>13.3f}s{sk_classify / ma_classify:>9.1f}x")
    print(f"classify throughput: maas {args.test_docs / ma_classify:,.0f} docs/s (batches of {args.batch}), "
          f"scikit-learn {args.test_docs / sk_classify:,.0f} docs/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
