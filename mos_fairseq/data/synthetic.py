"""A deterministic synthetic English->German-like parallel corpus for tests and the demo.

Not a word-for-word copy: the target has gender/case agreement of articles and adjectives,
subject-verb number agreement, verb-second order after a fronted time adverb, negation moved to
the end of the clause, and verb-final subordinate clauses ("..., weil der Hund die Katze sieht").
"""

from __future__ import annotations

import random
from pathlib import Path

# noun: (english singular, english plural, german singular, german plural, gender)
NOUNS = [
    ("dog", "dogs", "Hund", "Hunde", "m"),
    ("cat", "cats", "Katze", "Katzen", "f"),
    ("child", "children", "Kind", "Kinder", "n"),
    ("man", "men", "Mann", "Männer", "m"),
    ("woman", "women", "Frau", "Frauen", "f"),
    ("house", "houses", "Haus", "Häuser", "n"),
    ("car", "cars", "Auto", "Autos", "n"),
    ("book", "books", "Buch", "Bücher", "n"),
    ("teacher", "teachers", "Lehrer", "Lehrer", "m"),
    ("bird", "birds", "Vogel", "Vögel", "m"),
    ("apple", "apples", "Apfel", "Äpfel", "m"),
    ("city", "cities", "Stadt", "Städte", "f"),
    ("tree", "trees", "Baum", "Bäume", "m"),
    ("flower", "flowers", "Blume", "Blumen", "f"),
    ("letter", "letters", "Brief", "Briefe", "m"),
    ("student", "students", "Student", "Studenten", "m"),
    ("doctor", "doctors", "Arzt", "Ärzte", "m"),
    ("table", "tables", "Tisch", "Tische", "m"),
    ("window", "windows", "Fenster", "Fenster", "n"),
    ("girl", "girls", "Mädchen", "Mädchen", "n"),
    ("boy", "boys", "Junge", "Jungen", "m"),
    ("horse", "horses", "Pferd", "Pferde", "n"),
    ("friend", "friends", "Freund", "Freunde", "m"),
    ("song", "songs", "Lied", "Lieder", "n"),
    ("door", "doors", "Tür", "Türen", "f"),
    ("river", "rivers", "Fluss", "Flüsse", "m"),
    ("street", "streets", "Straße", "Straßen", "f"),
    ("picture", "pictures", "Bild", "Bilder", "n"),
    ("farmer", "farmers", "Bauer", "Bauern", "m"),
    ("mountain", "mountains", "Berg", "Berge", "m"),
    ("clock", "clocks", "Uhr", "Uhren", "f"),
    ("ship", "ships", "Schiff", "Schiffe", "n"),
]
# adjective: (english, german stem)
ADJECTIVES = [
    ("small", "klein"),
    ("big", "groß"),
    ("old", "alt"),
    ("young", "jung"),
    ("red", "rot"),
    ("green", "grün"),
    ("fast", "schnell"),
    ("quiet", "leise"),
    ("happy", "froh"),
    ("new", "neu"),
    ("beautiful", "schön"),
    ("tired", "müde"),
    ("strong", "stark"),
    ("clever", "klug"),
    ("cold", "kalt"),
    ("warm", "warm"),
    ("dark", "dunkel"),
    ("bright", "hell"),
]
# verb: (english 3sg, english plural/base, german 3sg, german plural)
VERBS = [
    ("sees", "see", "sieht", "sehen"),
    ("likes", "like", "mag", "mögen"),
    ("finds", "find", "findet", "finden"),
    ("buys", "buy", "kauft", "kaufen"),
    ("paints", "paint", "malt", "malen"),
    ("visits", "visit", "besucht", "besuchen"),
    ("hears", "hear", "hört", "hören"),
    ("follows", "follow", "folgt", "folgen"),
    ("reads", "read", "liest", "lesen"),
    ("carries", "carry", "trägt", "tragen"),
    ("loves", "love", "liebt", "lieben"),
    ("needs", "need", "braucht", "brauchen"),
    ("draws", "draw", "zeichnet", "zeichnen"),
    ("watches", "watch", "beobachtet", "beobachten"),
]
TIMES = [
    ("today", "heute"),
    ("yesterday", "gestern"),
    ("tomorrow", "morgen"),
    ("often", "oft"),
    ("sometimes", "manchmal"),
    ("now", "jetzt"),
    ("in the morning", "am Morgen"),
    ("at night", "nachts"),
]
CONJUNCTIONS = [("because", "weil"), ("while", "während"), ("although", "obwohl")]


def _german_np(noun, adjective, plural: bool, case: str) -> str:
    _, _, sg, pl, gender = noun
    if plural:
        article, ending = "die", "en"
    elif case == "acc" and gender == "m":
        article, ending = "den", "en"
    else:
        article, ending = {"m": "der", "f": "die", "n": "das"}[gender], "e"
    word = pl if plural else sg
    if adjective is None:
        return f"{article} {word}"
    stem = adjective[1]
    if stem.endswith("el") and ending:
        stem = stem[:-2] + "l"  # dunkel -> dunkle
    adj = stem + (ending[1:] if stem.endswith("e") else ending)
    return f"{article} {adj} {word}"


def _english_np(noun, adjective, plural: bool) -> str:
    word = noun[1] if plural else noun[0]
    return f"the {adjective[0]} {word}" if adjective else f"the {word}"


def _clause(rng: random.Random):
    subj, obj = rng.choice(NOUNS), rng.choice(NOUNS)
    s_pl, o_pl = rng.random() < 0.3, rng.random() < 0.3
    s_adj = rng.choice(ADJECTIVES) if rng.random() < 0.4 else None
    o_adj = rng.choice(ADJECTIVES) if rng.random() < 0.4 else None
    verb = rng.choice(VERBS)
    negated = rng.random() < 0.2
    en_s, en_o = _english_np(subj, s_adj, s_pl), _english_np(obj, o_adj, o_pl)
    de_s, de_o = _german_np(subj, s_adj, s_pl, "nom"), _german_np(obj, o_adj, o_pl, "acc")
    de_v = verb[3] if s_pl else verb[2]
    if negated:
        en_v = ("do not " if s_pl else "does not ") + verb[1]
    else:
        en_v = verb[1] if s_pl else verb[0]
    return en_s, en_v, en_o, de_s, de_v, de_o, negated


def sentence_pair(rng: random.Random) -> tuple[str, str]:
    en_s, en_v, en_o, de_s, de_v, de_o, neg = _clause(rng)
    nicht = " nicht" if neg else ""
    roll = rng.random()
    if roll < 0.35:  # fronted time adverb: verb second, subject after the verb
        t_en, t_de = rng.choice(TIMES)
        en = f"{t_en} {en_s} {en_v} {en_o} ."
        de = f"{t_de} {de_v} {de_s} {de_o}{nicht} ."
    elif roll < 0.6:  # subordinate clause: verb final in German
        c_en, c_de = rng.choice(CONJUNCTIONS)
        s2 = _clause(rng)
        nicht2 = " nicht" if s2[6] else ""
        en = f"{en_s} {en_v} {en_o} {c_en} {s2[0]} {s2[1]} {s2[2]} ."
        de = f"{de_s} {de_v} {de_o}{nicht} , {c_de} {s2[3]} {s2[5]}{nicht2} {s2[4]} ."
    else:
        en = f"{en_s} {en_v} {en_o} ."
        de = f"{de_s} {de_v} {de_o}{nicht} ."
    return _detokenize(en[0].upper() + en[1:]), _detokenize(de[0].upper() + de[1:])


def _detokenize(sentence: str) -> str:
    """Attach punctuation to the word before it, as in raw text (sacreBLEU scores detokenised text)."""
    return sentence.replace(" ,", ",").replace(" .", ".")


def write_corpus(
    out_dir: str | Path, n_train: int = 20000, n_valid: int = 400, n_test: int = 400, seed: int = 1
) -> dict[str, int]:
    """Write ``{train,valid,test}.{en,de}``; the same seed always gives the same files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    seen: set[str] = set()
    counts = {}
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        pairs: list[tuple[str, str]] = []
        while len(pairs) < n:
            en, de = sentence_pair(rng)
            if en in seen:  # keep valid/test disjoint from train and from each other
                continue
            seen.add(en)
            pairs.append((en, de))
        for lang, idx in (("en", 0), ("de", 1)):
            tmp = out / f".{split}.{lang}.tmp"
            tmp.write_text("".join(p[idx] + "\n" for p in pairs), encoding="utf-8")
            tmp.replace(out / f"{split}.{lang}")
        counts[split] = n
    return counts
