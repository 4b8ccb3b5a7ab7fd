"""Sample queries, documents, judged tables and prompts that several test modules use."""

import numpy as np

# A query and three pasted documents, one a line, for the app's rank form.
DEMO_QUERY = "what causes the northern lights?"
DEMO_DOCS = "Auroras come from solar particles.\nBanana bread recipe\nMagnetic storms and auroral ovals"

# A query and three documents of plainly different relevance, for the checks every backend runs.
CONTRACT_QUERY = "what causes the northern lights?"
CONTRACT_DOCS = [
    "Auroras happen when charged particles from the solar wind hit gases in the upper atmosphere. "
    "Oxygen gives green light. The lights are seen near the poles.",
    "A lighthouse warns ships of dangerous coastlines with a bright rotating beam.",
    "Banana bread needs ripe bananas, flour, butter and sugar.",
]

# A judged table of two queries with the faults a reader must report: unjudged, off the scale, no document, judged twice.
MULTI_QUERY_CSV = (
    "query,document,label\n"
    "what is an aurora,Auroras are lights in the polar sky,2\n"
    "what is an aurora,Banana bread needs ripe bananas,0\n"
    "what is an aurora,Oxygen glows green high up,\n"  # unjudged
    "what is an aurora,Solar wind particles hit the atmosphere,1\n"
    "best bread recipe,Banana bread needs ripe bananas,2\n"
    "best bread recipe,Sourdough takes days,5\n"  # off the scale
    "best bread recipe,,1\n"  # no document
    "best bread recipe,Banana bread needs ripe bananas,1\n"  # judged twice
    "best bread recipe,Lighthouses guide ships,0\n"
)

# Three queries with graded documents (markup in a query and a document), for the sweep.
JUDGED = {
    "what causes the northern lights?": [
        ("Auroras happen when charged particles from the solar wind hit the upper atmosphere.", 2),
        ("Oxygen atoms about 100 km up give the aurora its green colour.", 1),
        ("A lighthouse warns ships with a rotating beam.", 0),
        ("<img src=x onerror=alert(1)> banana bread", 0),
    ],
    "how do I bake sourdough bread": [
        ("Feed the starter, mix flour and water, proof overnight, bake at 250 °C.", 2),
        ("Sourdough gets its sour taste from lactic acid bacteria.", 1),
        ("The northern lights are best seen from Tromsø.", 0),
    ],
    "python read csv with <b>semicolons</b>": [
        ("pandas.read_csv('data.csv', sep=';') reads a semicolon-separated file.", 2),
        ("Excel exports CSV with the locale's list separator.", 0),
        ("Semicolons end statements in C.", 0),
    ],
}

# Three queries for prompts of varied lengths.
VARIED_QUERIES = ["what is a panda?", "capital of France", "how do vaccines work"]


def varied_prompts(reranker, count: int, seed: int = 0) -> list[list[int]]:
    """``count`` real reranker prompts of varied lengths (8 to ~300 tokens), with duplicates."""
    rng = np.random.default_rng(seed)
    words = "panda bear bamboo library frame city river vaccine cell immune data python france".split()
    prompts = []
    while len(prompts) < count:
        query = VARIED_QUERIES[len(prompts) % len(VARIED_QUERIES)]
        docs = [" ".join(rng.choice(words, size=int(rng.integers(1, 250)))) for _ in range(20)]
        prompts += [p.token_ids for p in reranker.builder.build("Judge relevance.", query, docs)]
    return prompts[:count]
