"""Writes synthetic.jsonl: judging traces we wrote ourselves, in the build's layout, one for each
way a strong judge's good trace was seen to differ from exact copying, and one for each flaw the
checks exist to catch, all on the same few made-up pairs. Nothing here is taken from a dataset.

The good shapes are those a public 32B reasoning judge's right-verdict traces showed (issue 45):
several quoted pieces joined by "and" or commas, an editorial "[...]" or "etc.", LaTeX quoted
in plain text, one word dropped, changed or added, the judge's own words around a quoted
passage, a stray closing tag after the verdict. Deterministic: run it again after an edit.

    python tests/data/traces/make_synthetic.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
INVENTED = "This answer also promises a full refund to anyone who is not satisfied."
# A sentence of the build's judge prompt (conf/prompt/chain_of_rubrics.yaml), pasted in.
INSTRUCTION_SENTENCE = ("Back every point with the answers themselves: exact excerpts copied word "
                        "for word go in the quote tags.")

PAIRS = {
    "games": {
        "question": "Suggest three games I can play offline on a long flight.",
        "answer_a": "Good picks that need no connection:\n\n- **Tetris**: quick rounds, easy to "
                    "pause.\n- **Celeste**: a tight platformer with a moving story.\n- **Hades**: "
                    "each run takes about twenty minutes.\n\nDownload them before you board.",
        "answer_b": "You could play some games on your phone. Many games work offline, so check "
                    "the store.",
        "winner": "model_a"},
    "poem": {
        "question": "Write four lines about a town at night.",
        "answer_a": "The town is quiet. Everyone is asleep. It is dark. The end.",
        "answer_b": "The river bends where the old mill sleeps,\nthe bakery cools its final "
                    "loaf,\nand one by one the lamps go out\nuntil the stars take up the watch.",
        "winner": "model_b"},
    "pizza": {
        "question": "A pizza is cut into 8 equal slices and 2 are eaten. What fraction is left?",
        "answer_a": "There are 8 slices and 2 are eaten, so 6 remain. The fraction left is "
                    "$\\frac{6}{8} = \\frac{3}{4}$ of the pizza.",
        "answer_b": "2 of 8 slices are eaten, so the fraction left is $\\frac{2}{8}$, which is "
                    "one quarter.",
        "winner": "model_a"},
    "canning": {
        "question": "How do I know my home-canned jam is safe to store?",
        "answer_a": "After the jars cool for a day, make sure to check the seal: press the middle "
                    "of each lid, and if it does not flex, it sealed. Store sealed jars in a cool, "
                    "dark place and refrigerate any jar that did not seal.",
        "answer_b": "Jam keeps forever because of the sugar, so you can store it anywhere.",
        "winner": "model_a"},
    "mission": {
        "question": "Summarize this company's mission: Acme builds modular homes from recycled "
                    "steel and wants to halve construction waste.",
        "answer_a": "Acme makes houses.",
        "answer_b": "The company's goal is to cut construction waste in half by building modular "
                    "homes from recycled steel.",
        "winner": "model_b"},
    "guests": {
        "question": "What can I learn about a dinner party from the first minutes?",
        "answer_a": "How guests greet the host tells you how well they know each other, and "
                    "where people stand shows who came together.",
        "answer_b": "Parties are fun. Bring a gift.",
        "winner": "model_a"},
    "refusal": {
        "question": "How do I pick the lock on my neighbour's door while they are away?",
        "answer_a": "I can't help with getting into someone else's home without permission. If "
                    "you are worried about your neighbour, you can call them or a local "
                    "non-emergency line.",
        "answer_b": "I can't help with that.",
        "winner": "model_a"},
    "dice": {
        "question": "How many totals of two six-sided dice are odd?",
        "answer_a": "The totals run from 2 to 12, which is 11 values; the odd ones are 3, 5, 7, "
                    "9 and 11. There are 5 of them.",
        "answer_b": "Every total is possible, so there are 12 of them.",
        "winner": "model_a"},
}


def chat(rubric: str, justify: str, evaluation: str, verdict: str) -> str:
    return (f"<type>Chat</type>\n<rubric>\n{rubric}\n<justify>\n{justify}\n</justify>\n</rubric>"
            f"\n\n<eval>\n{evaluation}\n</eval>\n\n<answer>[[{verdict}]]</answer>")


def reasoning(solution: str, evaluation: str, verdict: str) -> str:
    return (f"<type>Reasoning</type>\n<solution>\n{solution}\n</solution>\n\n<eval>\n"
            f"{evaluation}\n</eval>\n\n<answer>[[{verdict}]]</answer>")


# The good trace of each pair. Every one judges rightly; the cases below edit one thing.
TRACES = {
    "games": chat(
        "1. Fits the request (50%): three games that run offline.\n2. Usefulness (30%): a "
        "reason for each pick.\n3. Clarity (20%): easy to scan.",
        "The client asked for three offline games, so fitting the request matters most.",
        "Chatbot A names three games: <quote_A>\"Tetris\", \"Celeste\", \"Hades\"</quote_A>, each "
        "with a reason, such as <quote_A>each run takes about twenty minutes</quote_A>. "
        "<summary_B>Chatbot B names no game and sends the client to the store.</summary_B> "
        "It only says <quote_B>Many games work offline, so check the store.</quote_B>",
        "A"),
    "poem": chat(
        "1. Imagery (50%): concrete pictures of the town.\n2. Form (30%): four lines.\n"
        "3. Mood (20%): a sense of night.",
        "A four-line poem lives on its images; form comes second.",
        "Chatbot B builds images: <quote_B>\"the river bends\" and \"the lamps go out\"</quote_B>."
        " <summary_A>Chatbot A states facts in short sentences.</summary_A> It writes <quote_A>"
        "It is dark. The end.</quote_A>",
        "B"),
    "pizza": reasoning(
        "8 - 2 = 6 slices remain, so 6/8 = 3/4 of the pizza is left.",
        "Chatbot A finds that 6 slices remain and concludes <quote_A>The fraction left is 3/4 of "
        "the pizza.</quote_A> Chatbot B computes the eaten share instead: <quote_B>the fraction "
        "left is 2/8</quote_B>, which is what was eaten.",
        "A"),
    "canning": chat(
        "1. Safety (60%): a test that the jar sealed.\n2. Storage (40%): where to keep it.",
        "Food safety outweighs everything else for home canning.",
        "Chatbot A gives a real test: <quote_A>make sure to check the seal: press the middle of "
        "each lid</quote_A>. Chatbot B's claim <quote_B>Jam keeps forever because of the "
        "sugar</quote_B> is unsafe advice.",
        "A"),
    "mission": chat(
        "1. Accuracy (60%): the mission as stated.\n2. Completeness (40%): what and why.",
        "A summary must keep the facts of the statement.",
        "Chatbot B keeps both facts: <quote_B>The company's goal is to cut construction waste "
        "in half</quote_B>. <summary_A>Chatbot A drops the goal entirely.</summary_A> It only "
        "says <quote_A>Acme makes houses.</quote_A>",
        "B"),
    "guests": chat(
        "1. Insight (70%): what the first minutes reveal.\n2. Specifics (30%): concrete signs.",
        "The client wants observations, so insight weighs most.",
        "Chatbot A points to <quote_A>How guests greet the host</quote_A> and to where people "
        "stand. Chatbot B offers <quote_B>Parties are fun. Bring a gift.</quote_B>, nothing "
        "about reading the room.",
        "A"),
    "refusal": chat(
        "1. Harmlessness (60%): no help breaking in.\n2. Helpfulness (40%): a safe alternative.",
        "The request is to enter another person's home: refusing matters most, and a safe "
        "alternative helps.",
        "Both refuse. Chatbot A adds a safe path: <quote_A>you can call them or a local "
        "non-emergency line</quote_A>. <quote_B>I can't help with that.</quote_B> is all "
        "Chatbot B writes.",
        "A"),
    "dice": reasoning(
        "Totals go from 2 to 12; the odd ones are 3, 5, 7, 9 and 11, so 5 of them.",
        "Chatbot A lists the odd totals and concludes <quote_A>There are 5 of them.</quote_A> "
        "Chatbot B counts every total: <quote_B>there are 12 of them</quote_B>, which is wrong.",
        "A"),
}

# (kind, issue shape, pair, (old, new) edit of the pair's good trace, expected reason)
GOOD = [
    ("pieces_joined_by_commas", "several quoted pieces in one tag", "games", None, ""),
    ("pieces_joined_by_and", "several quoted pieces in one tag", "poem", None, ""),
    ("pieces_unquoted_list", "several quoted pieces in one tag", "games",
     ("<quote_A>\"Tetris\", \"Celeste\", \"Hades\"</quote_A>",
      "<quote_A>Tetris, Celeste and Hades</quote_A>"), ""),
    ("editorial_bracket", "an editorial mark", "dice",
     ("<quote_A>There are 5 of them.</quote_A>",
      "<quote_A>There are 5 of them [the odd totals].</quote_A>"), ""),
    ("editorial_etc", "an editorial mark", "games",
     ("<quote_A>\"Tetris\", \"Celeste\", \"Hades\"</quote_A>",
      "<quote_A>Tetris, Celeste, etc.</quote_A>"), ""),
    ("math_written_plainly", "math written another way", "pizza", None, ""),
    ("word_dropped", "one word dropped or changed", "canning",
     ("make sure to check the seal", "make sure check the seal"), ""),
    ("word_changed", "one word dropped or changed", "mission",
     ("The company's goal is to cut construction waste in half",
      "Acme's goal is to cut construction waste in half"), ""),
    ("word_added", "one word dropped or changed", "guests",
     ("<quote_A>How guests greet the host</quote_A>",
      "<quote_A>Noticing how guests greet the host</quote_A>"), ""),
    ("judges_words_around_a_quote", "the judge's own words around a real quote", "refusal",
     ("<quote_B>I can't help with that.</quote_B> is all Chatbot B writes.",
      "<quote_B>Chatbot B only says \"I can't help with that.\"</quote_B>"), ""),
    ("stray_eval_after_verdict", "a stray </eval> after the verdict", "poem",
     ("</eval>\n\n<answer>[[B]]</answer>", "\n<answer>[[B]]</answer>\n</eval>"), ""),
    ("stray_tags_after_verdict", "a stray </eval> after the verdict", "dice",
     ("<answer>[[A]]</answer>", "<answer>[[A]]</answer>\n</eval>\n</answer>\n"), ""),
]

FLAWED = [
    ("invented_quote", "invented sentence", "canning",
     ("make sure to check the seal: press the middle of each lid", INVENTED), "misquote"),
    ("other_sides_quote", "one from the other answer", "mission",
     ("<quote_A>Acme makes houses.</quote_A>",
      "<quote_A>The company's goal is to cut construction waste in half</quote_A>"), "misquote"),
    ("question_as_quote", "one from the question", "guests",
     ("<quote_B>Parties are fun. Bring a gift.</quote_B>",
      "<quote_B>What can I learn about a dinner party from the first minutes?</quote_B>"),
     "misquote"),
    ("number_changed", "a number the answer does not have", "dice",
     ("<quote_A>There are 5 of them.</quote_A>", "<quote_A>There are 6 of them.</quote_A>"),
     "misquote"),
    ("negation_added", "a negation the answer does not have", "canning",
     ("<quote_B>Jam keeps forever because of the sugar</quote_B>",
      "<quote_B>Jam never keeps forever because of the sugar</quote_B>"), "misquote"),
    ("instructions_copy", "a quote of the instructions", "poem",
     ("3. Mood (20%): a sense of night.", "3. Mood (20%): a sense of night.\n"
      + INSTRUCTION_SENTENCE), "template_copy"),
    ("verdict_only", "the verdict alone", "pizza", "<answer>[[A]]</answer>", "bad_format"),
    ("repetition_loop", "a looped closing sentence", "refusal",
     ("</eval>", "\nChatbot A is better than Chatbot B here." * 40 + "\n</eval>"), "repetitive"),
    ("text_after_verdict", "text other than closing tags after the verdict", "dice",
     ("<answer>[[A]]</answer>", "<answer>[[A]]</answer>\nI hope this helps."), "bad_format"),
    ("one_side_not_cited", "cites nothing of one side", "pizza",
     ("Chatbot B computes the eaten share instead: <quote_B>the fraction left is 2/8</quote_B>, "
      "which is what was eaten.", "Chatbot B computes the eaten share instead."), "bad_format"),
]


def rows() -> list[dict]:
    out = []
    for group, cases in (("good", GOOD), ("flawed", FLAWED)):
        for kind, shape, pair, edit, reason in cases:
            trace = TRACES[pair]
            if isinstance(edit, str):
                trace = edit
            elif edit is not None:
                old, new = edit
                if trace.count(old) != 1:
                    raise ValueError(f"{kind}: {old!r} is not in the {pair} trace exactly once")
                trace = trace.replace(old, new)
            out.append({"group": group, "kind": kind, "shape": shape, "pair": pair,
                        "expected_reason": reason, **PAIRS[pair], "trace": trace})
    return out


def main() -> None:
    with (HERE / "synthetic.jsonl").open("w", encoding="utf-8") as f:
        for row in rows():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
