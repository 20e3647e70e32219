"""Questions about the sample corpus, shared by the benchmark scripts."""

QUESTIONS = [
    "What does the author say about refining capacity?",
    "Why does India need China's expertise for batteries?",
    "What is holding back the new energy sector?",
    "What changed in export policies after 2023?",
    "How can India ensure genuine technology transfer?",
    "What do the comments say about money and technology?",
    "What advantages do Chinese companies have?",
    "Is dependence in the energy transition risky?",
]
