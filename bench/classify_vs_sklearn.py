"""Benchmark: maas-discriminative against scikit-learn, side by side in one script on the same random corpus.

    make bench            # or: PYTHONPATH=build/python .venv/bin/python bench/classify_vs_sklearn.py

Part 1, in-process on one core in CPU seconds (the core library through maas_discriminative_bench, no gRPC), on a
corpus of 6-letter words for three pipelines, then on an English-like corpus (varied word lengths, capitals,
punctuation) and on the same with code points >= 0x80 (accented letters, Greek and Cyrillic words, curly quotes and
dashes: every text holds some) for the two word pipelines, on long Turkish-style texts (word counts), and on the
mail-like corpus below split in halves (train / test: ~100 000 terms, texts of hundreds of distinct words)
(word counts + MultinomialNB, char_wb 1-3 + MultinomialNB, tf-idf + MultinomialNB); the English-like corpora also
with hashing (2^20 features), with the custom token_pattern r"\w+" (one-character tokens kept), and the English-like
one with word unigrams and bigrams (ngram_range (1, 2), ~0.8 M terms):
  train    maas: Trainer (all texts) + Finish | sklearn: fit_transform + fit
  classify maas: Pipeline::ClassifyCompact (vectorize + jll + predict_proba + predict, the compact Classify form)
           | sklearn: transform + predict_proba
  memory   peak RSS of a process that loads the corpus and trains, minus its RSS once the corpus is loaded (both
           sides), next to the size of scikit-learn's sparse training matrix (data + indices + indptr); also on a
           32 MB mail-like corpus (SpamAssassin's size: headers with hosts and ids, bodies; --mail_mb,
           --only_mail_memory) for word counts and tf-idf, where the issue's target is below 3x that matrix
Probabilities are checked equal (1e-12) before the timings are printed. Timings come in --rounds rounds, each
scikit-learn's run followed at once by maas's (the median of 3 runs of the tool): each ratio printed is the median of
the rounds' ratios, so that both sides of a ratio were measured within seconds of each other (this machine's speed
drifts by up to 2x over minutes, alike for both); the times printed are the medians of the rounds.

Part 2, through gRPC (word counts), measures (median of --repeats runs each):
  train    maas: Train client stream (all batches) | sklearn: CountVectorizer.fit_transform + MultinomialNB.fit
  classify maas: Classify of --batch texts per call, one call after another | sklearn: transform + predict_proba
Both sides also check that they agree (labels identical, probabilities within 1e-12), so the numbers compare equal
work. maas numbers include the gRPC round trips and serialization on loopback; sklearn's do not.
"""

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import grpc
import numpy as np
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
from sklearn.naive_bayes import MultinomialNB

from maas.common.v1 import common_pb2
from maas.discriminative.v1 import discriminative_pb2 as disc, discriminative_pb2_grpc
from servers import cpu_summary, start_logged

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


def english_like_words(rng, vocabulary_size=30000):
    """A word list of English-like lengths (1-14 letters, mean ~5, a fifth 8+) and letter frequencies."""
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    freq = np.array([12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4, 2.2, 2.0, 2.0, 1.9,
                     1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07])
    lengths = rng.choice(np.arange(1, 15), size=vocabulary_size,
                         p=np.array([3, 17, 20, 16, 11, 9, 8, 6, 4, 2.5, 1.5, 1, 0.6, 0.4]) / 100)
    return ["".join(rng.choice(letters, size=n, p=freq / freq.sum())) for n in lengths]


def english_like_corpus(rng, docs, words, classes=8):
    """Documents over `words` (english_like_words; the training and test corpora share one list, as real text
    shares its vocabulary), Zipf-distributed, a tenth capitalised, some followed by a comma or full stop: varied
    token lengths, unlike `corpus`'s 6-letter words, exercise the tokenizer's and the vocabulary lookup's branches
    the way real text does."""
    vocabulary_size = len(words)
    labels = rng.integers(classes, size=docs)
    texts = []
    for label in labels:
        ranks = (rng.zipf(1.2, size=rng.integers(30, 150)) + 311 * label) % vocabulary_size
        out = []
        for rank, u in zip(ranks, rng.random(len(ranks))):
            word = words[rank].capitalize() if u < 0.1 else words[rank]
            out.append(word + ("," if u > 0.93 else "." if u > 0.9 else ""))
        texts.append(" ".join(out))
    return texts, [f"class-{l}" for l in labels]


def median_seconds(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def median_cpu_seconds(fn, repeats):
    """CPU seconds of this process (robust when the machine is shared; scikit-learn's sparse work is single-threaded)."""
    return median_seconds(fn, repeats, clock=time.process_time)


def start_server(build_dir, model_dir, flags=()):
    return start_logged([build_dir / "bin" / "maas-discriminative", "--port", "0", "--model_dir", model_dir, *flags],
                        pathlib.Path(model_dir).parent / "maas-discriminative.log")


PIPELINES = {
    # name: (scikit-learn vectorizer factory, maas VectorizerConfig)
    "word counts": (lambda: CountVectorizer(), disc.VectorizerConfig()),
    "char_wb 1-3": (lambda: CountVectorizer(analyzer="char_wb", ngram_range=(1, 3)),
                    disc.VectorizerConfig(count=disc.CountVectorizerConfig(
                        text=disc.TextOptions(analyzer=disc.ANALYZER_CHAR_WB, ngram_min=1, ngram_max=3)))),
    "tf-idf": (lambda: TfidfVectorizer(), disc.VectorizerConfig(tfidf=disc.TfidfConfig())),
    # scikit-learn's default 2^20 features; without alternate signs, which MultinomialNB refuses.
    "hashing": (lambda: HashingVectorizer(alternate_sign=False),
                disc.VectorizerConfig(hashing=disc.HashingVectorizerConfig(alternate_sign=False))),
    # A custom token_pattern people use: the runs of \w of any length, one-character tokens kept.
    r"pattern \w+": (lambda: CountVectorizer(token_pattern=r"\w+"),
                     disc.VectorizerConfig(count=disc.CountVectorizerConfig(
                         text=disc.TextOptions(token_pattern=r"\w+")))),
    # Word unigrams and bigrams, the common recipe beyond unigrams (a vocabulary of ~0.8 M terms).
    "words (1, 2)": (lambda: CountVectorizer(ngram_range=(1, 2)),
                     disc.VectorizerConfig(count=disc.CountVectorizerConfig(
                         text=disc.TextOptions(ngram_min=1, ngram_max=2)))),
}
# The three pipelines (the 6-letter corpus runs these; the others add hashing).
CORE_PIPELINES = ("word counts", "char_wb 1-3", "tf-idf")

SKLEARN_MEMORY = """
import pickle, sys
from sklearn.naive_bayes import MultinomialNB
import {module}
def status_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
texts, labels, vectorizer = pickle.load(open(sys.argv[1], "rb"))
open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to the current RSS
before = status_kb("VmRSS:")
x = vectorizer.fit_transform(texts)
MultinomialNB().fit(x, labels)
print(status_kb("VmHWM:"), before, x.data.nbytes + x.indices.nbytes + x.indptr.nbytes, x.shape[1])
"""


def train_memory(tool_args, tmp, make, texts, labels):
    """(maas's peak RSS growth while training, scikit-learn's, the bytes of scikit-learn's CSR training matrix, its
    features), each side in a process of its own that first loads the corpus: the tool with `tool_args` (its
    TrainConfig, batch.pb holding `texts`) in train_only mode, scikit-learn's fit_transform + MultinomialNB.fit of
    make()."""
    import pickle
    subprocess.run(tool_args + ["1", "train_only"], check=True)
    memory = dict(line.split() for line in (tmp / "timing.txt").read_text().splitlines())
    maas_rss = int(memory["peak_rss_kb"]) - int(memory["loaded_rss_kb"])
    with open(tmp / "data.pkl", "wb") as f:
        pickle.dump((texts, labels, make()), f)
    out = subprocess.run([sys.executable, "-c", SKLEARN_MEMORY.format(module="sklearn.feature_extraction.text"),
                          tmp / "data.pkl"], check=True, capture_output=True, text=True).stdout.split()
    sk_peak, sk_loaded, matrix_bytes, features = (int(v) for v in out)
    return maas_rss, sk_peak - sk_loaded, matrix_bytes, features


def bench_tool(build_dir):
    tool = build_dir / "services/discriminative/core/tools/maas_discriminative_bench"
    if not tool.is_file():
        raise SystemExit(f"{tool} is not built (cmake --build build --target maas_discriminative_bench)")
    return tool


def write_corpus(tmp, train_texts, train_labels, test_texts):
    """The tool's batch.pb (the training examples) and req.pb (the texts to classify) in tmp."""
    batch = disc.TextBatch(examples=[disc.LabeledText(text=t, label=l) for t, l in zip(train_texts, train_labels)])
    (tmp / "batch.pb").write_bytes(batch.SerializeToString())
    (tmp / "req.pb").write_bytes(disc.ClassifyRequest(texts=test_texts).SerializeToString())


def tool_command(tool, tmp, vectorizer_config):
    """The tool's command line (without its repeats and mode) for the corpus of write_corpus, training a
    `vectorizer_config` + MultinomialNB pipeline (config.pb)."""
    config = disc.TrainConfig(name="bench", vectorizer=vectorizer_config)
    (tmp / "config.pb").write_bytes(config.SerializeToString())
    return [str(tool), tmp / "config.pb", tmp / "batch.pb", tmp / "req.pb", tmp]


def mail_like_corpus(rng, words, total_bytes):
    """Mail as a SpamAssassin-style corpus holds it, `total_bytes` of it (ham and spam, 2 classes): headers
    (Received lines with hosts, IP addresses, ESMTP ids and dates, a Message-ID, From / To / Subject) and a body of
    20-1500 English-like words (`words`, Zipf) in lines of ~12, with some URLs and numbers. Its vocabulary grows
    as real mail's does: every message brings unique tokens (ids, hex), so the sparse matrix and the vocabulary
    are both large, which is what training memory is measured on."""
    hosts = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(n))) + rng.choice(
        [".com", ".net", ".org", ".de", ".co.uk"]) for n in rng.integers(4, 12, size=3000)]
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    texts, labels, size = [], [], 0
    while size < total_bytes:
        label = int(rng.integers(2))
        host, relay = hosts[int(rng.integers(len(hosts)))], hosts[int(rng.integers(len(hosts)))]
        ids = rng.integers(0, 1 << 62, size=3)
        ip = ".".join(str(int(v)) for v in rng.integers(1, 255, size=4))
        date = (f"{days[int(rng.integers(7))]}, {int(rng.integers(1, 29))} Aug 2002 "
                f"{int(rng.integers(24)):02d}:{int(rng.integers(60)):02d}:{int(rng.integers(60)):02d} +0100")
        ranks = (rng.zipf(1.2, size=int(rng.integers(20, 1500))) + 311 * label) % len(words)
        body = [words[r] for r in ranks]
        for j in np.flatnonzero(rng.random(len(body)) < 0.01):
            body[j] = f"http://www.{hosts[int(rng.integers(len(hosts)))]}/{int(rng.integers(1 << 40)):x}.html"
        for j in np.flatnonzero(rng.random(len(body)) < 0.02):
            body[j] = str(int(rng.integers(0, 100000)))
        lines = [" ".join(body[i:i + 12]) for i in range(0, len(body), 12)]
        subject = " ".join(words[r] for r in rng.integers(len(words), size=int(rng.integers(2, 9))))
        text = (f"From user{int(ids[0] % 100000)}@{host}  {date}\n"
                f"Return-Path: <user{int(ids[0] % 100000)}@{host}>\n"
                f"Received: from {host} ([{ip}]) by mail.{relay} (Postfix) with ESMTP id {int(ids[1]):X}; {date}\n"
                f"Message-ID: <{int(ids[2]):x}.{int(ids[1] % 1000000)}@{host}>\n"
                f"From: {words[int(rng.integers(len(words)))].capitalize()} <user{int(ids[0] % 100000)}@{host}>\n"
                f"To: list@{relay}\nSubject: {subject}\nDate: {date}\n"
                "Content-Type: text/plain; charset=us-ascii\n\n" + "\n".join(lines) + "\n")
        texts.append(text)
        labels.append("spam" if label else "ham")
        size += len(text.encode())
    return texts, labels


def mail_memory(build_dir, megabytes):
    """Training's peak memory on a SpamAssassin-sized mail corpus of `megabytes` (the issue's target: below 3x
    scikit-learn's sparse training matrix), for word counts and tf-idf (+ MultinomialNB)."""
    texts, labels = mail_like_corpus(np.random.default_rng(3), english_like_words(np.random.default_rng(2)),
                                     megabytes * 1e6)
    tool = bench_tool(build_dir)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    print(f"train memory, mail-like corpus ({len(texts)} messages, {megabytes:.1f} MB; peak RSS growth while "
          "training, after the corpus is loaded, against scikit-learn's CSR training matrix X)")
    print(f"{'pipeline':14}{'features':>10}{'X (CSR)':>11}{'maas':>11}{'maas / X':>10}{'sklearn':>11}{'sklearn / X':>13}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        write_corpus(tmp, texts, labels, [])
        for name in ("word counts", "tf-idf"):
            make, vectorizer_config = PIPELINES[name]
            args = tool_command(tool, tmp, vectorizer_config)
            maas_rss, sk_rss, matrix_bytes, features = train_memory(args, tmp, make, texts, labels)
            x_mb = matrix_bytes / 2**20
            print(f"{name:14}{features:>10}{x_mb:>8.1f} MB{maas_rss / 1024:>8.1f} MB{maas_rss / 1024 / x_mb:>9.2f}x"
                  f"{sk_rss / 1024:>8.1f} MB{sk_rss / 1024 / x_mb:>12.2f}x")
            # Served: the same as one Train stream to maas-discriminative, as it runs by default, where malloc
            # keeps up to 32 MiB of freed memory for the next calls (--malloc_retain_mb), and without that.
            for flags in ([], ["--malloc_retain_mb", "0"]):
                served_kb = served_train_memory(build_dir, tmp / "models", vectorizer_config, texts, labels, flags)
                print(f"{'':14}{'':>10}{'':>11}{served_kb / 1024:>8.1f} MB{served_kb / 1024 / x_mb:>9.2f}x  served "
                      f"(Train stream of 1 MB batches){' ' if flags else ''}{' '.join(flags)}")


def served_train_memory(build_dir, model_dir, vectorizer_config, texts, labels, flags=()):
    """The peak RSS growth (kB) of a maas-discriminative (started with `flags`) that receives `texts` as one Train
    stream in batches of ~1 MB: what training holds in the server (received batches, vocabulary, sparse rows, the
    fitted model and its store, and the freed memory malloc keeps), from its RSS once serving to its peak."""
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir()
    proc, port = start_server(build_dir, model_dir, flags)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = discriminative_pb2_grpc.DiscriminativeServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=30)

            def status_kb(field):
                for line in open(f"/proc/{proc.pid}/status"):
                    if line.startswith(field):
                        return int(line.split()[1])
                raise SystemExit(f"no {field} in /proc/{proc.pid}/status")

            def requests():
                yield disc.TrainRequest(config=disc.TrainConfig(name="mail", vectorizer=vectorizer_config))
                batch, size = [], 0
                for text, label in zip(texts, labels):
                    batch.append(disc.LabeledText(text=text, label=label))
                    size += len(text)
                    if size >= 1 << 20:
                        yield disc.TrainRequest(batch=disc.TextBatch(examples=batch))
                        batch, size = [], 0
                if batch:
                    yield disc.TrainRequest(batch=disc.TextBatch(examples=batch))

            with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
                f.write("5")  # the server's peak RSS from here
            before = status_kb("VmRSS:")
            stub.Train(requests(), timeout=600)
            return status_kb("VmHWM:") - before
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def in_process(build_dir, train_texts, train_labels, test_texts, rounds, pipelines=PIPELINES, title="random"):
    """Part 1: the core library in-process on one core vs scikit-learn, per pipeline."""
    tool = bench_tool(build_dir)
    rows = []
    simd_path = "unknown"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        write_corpus(tmp, train_texts, train_labels, test_texts)
        for name, (make, vectorizer_config) in pipelines.items():
            def sk_train():
                v = make()
                return v, MultinomialNB().fit(v.fit_transform(train_texts), train_labels)
            vectorizer, nb = sk_train()
            args = tool_command(tool, tmp, vectorizer_config)
            # Rounds of scikit-learn's run next to maas's (the tool's median of 3 runs), so that each
            # ratio compares two measurements taken within seconds of each other: this machine's
            # speed drifts by up to 2x over minutes, alike for both, far less within a round.
            sk_fits, sk_classifies, maas_fits, maas_classifies = [], [], [], []
            for _ in range(rounds):
                sk_fits.append(median_cpu_seconds(sk_train, 1))
                sk_classifies.append(median_cpu_seconds(
                    lambda: nb.predict_proba(vectorizer.transform(test_texts)), 1))
                subprocess.run(args + ["3"], check=True)
                timing = dict(line.split() for line in (tmp / "timing.txt").read_text().splitlines())
                maas_fits.append(float(timing["train_seconds"]))
                maas_classifies.append(float(timing["classify_seconds"]))
                simd_path = timing.get("simd_path", "unknown")
            fit_ratio = statistics.median(s / m for s, m in zip(sk_fits, maas_fits))
            classify_ratio = statistics.median(s / m for s, m in zip(sk_classifies, maas_classifies))
            proba = common_pb2.Matrix()
            proba.ParseFromString((tmp / "proba.pb").read_bytes())
            got = np.array(proba.values).reshape(proba.rows, proba.cols)
            assert np.allclose(got, nb.predict_proba(vectorizer.transform(test_texts)), rtol=0, atol=1e-12), \
                f"{name}: maas and scikit-learn probabilities differ"
            maas_rss, sk_rss, matrix_bytes, _ = train_memory(args, tmp, make, train_texts, train_labels)
            rows.append((name, statistics.median(maas_fits), statistics.median(sk_fits), fit_ratio,
                         statistics.median(maas_classifies), statistics.median(sk_classifies), classify_ratio,
                         maas_rss, sk_rss, matrix_bytes, len(nb.feature_count_[0])))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"in-process, one core, CPU seconds, medians of {rounds} rounds, each ratio the median of the rounds' "
          f"ratios ({title} corpus: {len(train_texts)} train / {len(test_texts)} test docs; probabilities checked "
          f"equal; load average {load}; {cpu_summary()}, maas's word-count kernels on the {simd_path} path)")
    print(f"{'pipeline':14}{'features':>9}{'train maas':>12}{'sklearn':>9}{'ratio':>7}"
          f"{'classify maas':>15}{'sklearn':>9}{'ratio':>7}{'train RSS growth maas':>23}{'sklearn':>9}{'X (CSR)':>9}")
    for name, mt, st, rt, mc, sc, rc, mr, sr, xb, f in rows:
        print(f"{name:14}{f:>9}{mt:>11.3f}s{st:>8.3f}s{rt:>6.1f}x{mc:>14.3f}s{sc:>8.3f}s{rc:>6.1f}x"
              f"{mr / 1024:>20.1f} MB{sr / 1024:>6.1f} MB{xb / 2**20:>6.1f} MB")


def unicode_mixed_words(rng, words):
    """`words` (english_like_words) as text in other European languages looks: a sixth of them with an accented
    letter (é, ü, ñ, ß, ø, ...), one in twenty-five spelled in Greek or Cyrillic letters."""
    accented = list("éèêëàâäçîïôöûüùñøåßœáíóúãõ")
    greek = dict(zip("abcdefghijklmnopqrstuvwxyz", "αβψδεφγηιξκλμνοπθρστυωςχυζ"))
    cyrillic = dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопярстувшхыз"))
    out = []
    for word, u in zip(words, rng.random(len(words))):
        if u < 1 / 6 and len(word) > 1:
            i = int(rng.integers(len(word)))
            word = word[:i] + accented[int(rng.integers(len(accented)))] + word[i + 1:]
        elif u < 1 / 6 + 1 / 25:
            alphabet = greek if u < 1 / 6 + 1 / 50 else cyrillic
            word = "".join(alphabet[c] for c in word)
        out.append(word)
    return out


def unicode_mixed_corpus(rng, docs, words, classes=8):
    """english_like_corpus over unicode_mixed_words, with the punctuation of typeset text: curly quotes and
    apostrophes, dashes, ellipses; a few words in capitals (Greek ones then hold a capital sigma, whose lowercase
    depends on its place in the word)."""
    texts, labels = english_like_corpus(rng, docs, words, classes)
    marks = ["’s", "”", "“", " —", "…", "’"]
    out = []
    for text in texts:
        parts = text.split(" ")
        for _ in range(int(rng.integers(0, 6))):
            i = int(rng.integers(len(parts)))
            parts[i] = parts[i] + marks[int(rng.integers(len(marks)))] if rng.random() < 0.8 else parts[i].upper()
        out.append(" ".join(parts))
    return out, labels


def dotted_i_long_corpus(rng, docs, words, words_per_doc=8000, classes=4):
    """Long texts (~50 KB) in which a third of the words are Turkish-style capitals holding 'İ' (U+0130, which
    lowercases to two code points, 'i' + U+0307) and 'I': lowercasing such texts was quadratic in their length in
    maas until 2026-12-05 (a 480 KB text took 0.55 s), which the short-text corpora above cannot show."""
    out, labels = [], []
    for _ in range(docs):
        picked = [words[int(i)] for i in rng.integers(len(words), size=words_per_doc)]
        for j in np.flatnonzero(rng.random(words_per_doc) < 1 / 3):
            picked[j] = picked[j].upper().replace("I", "İ", 1) + "İ"
        out.append(" ".join(picked))
        labels.append(f"c{int(rng.integers(classes))}")
    return out, labels


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_docs", type=int, default=20000)
    parser.add_argument("--test_docs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=1000, help="texts per Classify call")
    parser.add_argument("--repeats", type=int, default=3, help="runs per gRPC measurement")
    parser.add_argument("--rounds", type=int, default=5,
                        help="in-process rounds (scikit-learn's run next to maas's, one ratio per round)")
    parser.add_argument("--build_dir", default=os.environ.get("MAAS_BUILD_DIR", ROOT / "build"))
    parser.add_argument("--skip_grpc", action="store_true", help="only the in-process part")
    parser.add_argument("--mail_mb", type=float, default=32,
                        help="size of the mail-like corpus whose training memory is measured (MB)")
    parser.add_argument("--only_mail_memory", action="store_true", help="only the mail corpus's training memory")
    args = parser.parse_args()
    build_dir = pathlib.Path(args.build_dir)
    if args.only_mail_memory:
        mail_memory(build_dir, args.mail_mb)
        return 0

    rng = np.random.default_rng(1)
    train_texts, train_labels = corpus(rng, args.train_docs)
    test_texts, _ = corpus(rng, args.test_docs)
    in_process(build_dir, train_texts, train_labels, test_texts, args.rounds,
               pipelines={name: PIPELINES[name] for name in CORE_PIPELINES}, title="6-letter-word")
    words = english_like_words(rng)
    english_train, english_labels = english_like_corpus(rng, args.train_docs, words)
    english_test, _ = english_like_corpus(rng, args.test_docs, words)
    in_process(build_dir, english_train, english_labels, english_test, args.rounds,
               pipelines={name: PIPELINES[name]
                          for name in ("word counts", "tf-idf", "hashing", r"pattern \w+", "words (1, 2)")},
               title="English-like")
    mixed_words = unicode_mixed_words(rng, words)
    mixed_train, mixed_labels = unicode_mixed_corpus(rng, args.train_docs, mixed_words)
    mixed_test, _ = unicode_mixed_corpus(rng, args.test_docs, mixed_words)
    in_process(build_dir, mixed_train, mixed_labels, mixed_test, args.rounds,
               pipelines={name: PIPELINES[name] for name in ("word counts", "tf-idf", r"pattern \w+")},
               title="English-like with accents, Greek, Cyrillic, typeset punctuation")
    dotted_train, dotted_labels = dotted_i_long_corpus(rng, 200, words)
    dotted_test, _ = dotted_i_long_corpus(rng, 200, words)
    in_process(build_dir, dotted_train, dotted_labels, dotted_test, min(args.rounds, 3),
               pipelines={"word counts": PIPELINES["word counts"]},
               title="long texts (~50 KB) of capitals with Turkish dotted I")
    # The mail-like corpus of the memory measurement, halved into train and test: a vocabulary of ~100 000
    # terms (its table and counts beyond the caches) and texts of hundreds of distinct words.
    mail_texts, mail_labels = mail_like_corpus(np.random.default_rng(3), english_like_words(np.random.default_rng(2)),
                                               args.mail_mb * 1e6)
    half = len(mail_texts) // 2
    in_process(build_dir, mail_texts[:half], mail_labels[:half], mail_texts[half:], min(args.rounds, 3),
               pipelines={name: PIPELINES[name] for name in ("word counts", "tf-idf", "hashing")},
               title=f"mail-like ({args.mail_mb:g} MB, halves)")
    mail_memory(build_dir, args.mail_mb)
    if args.skip_grpc:
        return 0

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
