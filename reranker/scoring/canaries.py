"""Known-answer pairs: (query, clearly relevant document, clearly irrelevant document), in English and Korean.

The canary check (``reranker.scoring.check``) scores them after a model loads; the engine scores them to check a
faster CPU path against float32 at load.
"""

CANARIES = [
    (
        "What is the capital of France?",
        "Paris is the capital and most populous city of France.",
        "The mitochondrion is the powerhouse of the cell and produces ATP.",
    ),
    (
        "How do I boil an egg?",
        "Place the egg in boiling water for about nine minutes, then cool it in cold water.",
        "The Treaty of Westphalia was signed in 1648, ending the Thirty Years' War.",
    ),
    (
        "한국의 수도는 어디인가요?",
        "서울은 대한민국의 수도이자 최대 도시입니다.",
        "광합성은 식물이 빛 에너지를 화학 에너지로 바꾸는 과정입니다.",
    ),
]
