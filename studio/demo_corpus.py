"""Text generators for the embedded demo: our own simple-English corpus and the pirate persona.

Owns: the question/answer generator (plain answers), the
pirate rewrite (`pirate()`), the everyday-story generator and the hand-written paragraphs of the
pre-training corpus. Everything is seeded (random.Random) and written by us; no
downloads, no copied text.

Does not own: the word tables (studio.demo_words), writing files, dataset formats and planted quality problems (studio.demo), the
tokenizer or the model.
"""

from __future__ import annotations

import random
import re

from studio.demo_words import (
    THINGS, TASKS, ANIMALS, COLORS, OPPOSITES, TIPS, WHY, SMALL_TALK, MEALS, FOODS, SEASONS, DAYS,
    MONTHS, SIZES, PETS, NAMES, PLACES, TIMES, WEATHER, PREFIXES)

# Word-level pirate rewrite: keeps the plain answer recognisable, so the fine-tuned difference is
# the persona (Ahoy!/Arr! frame + a few pirate words), not the content.
_PIRATE_WORDS = {"you": "ye", "You": "Ye", "your": "yer", "Your": "Yer", "my": "me", "My": "Me",
                 "is": "be", "are": "be", "friend": "matey", "friends": "mateys", "yes": "aye", "Yes": "Aye",
                 "money": "doubloons", "Hello": "Ahoy there", "Hi": "Ahoy there", "boat": "ship"}
_PIRATE_RE = re.compile(r"\b(" + "|".join(_PIRATE_WORDS) + r")\b")


def pirate(answer: str) -> str:
    """The persona the sample datasets teach: 'Ahoy! ' + answer with pirate words + ' Arr!'."""
    return "Ahoy! " + _PIRATE_RE.sub(lambda m: _PIRATE_WORDS[m.group(1)], answer) + " Arr!"


def _rows(table: str) -> list[list[str]]:
    return [line.split("|") for line in table.strip().splitlines()]


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _ask(rng: random.Random, question: str) -> str:
    prefix = rng.choice(PREFIXES)
    return prefix + (question[0].lower() + question[1:] if prefix.endswith(", ") else question)


def _qa_thing(rng):
    name, definition = rng.choice(_rows(THINGS))
    q = rng.choice([f"What is {_a(name)}?", f"Can you tell me what {_a(name)} is?", f"Explain what {_a(name)} is.",
                    f"Describe {_a(name)} in one sentence.", f"What do people mean by {_a(name)}?"])
    return q, f"{_a(name).capitalize()} is {definition}."


def _qa_task(rng):
    task, s1, s2, s3 = rng.choice(_rows(TASKS))
    q = rng.choice([f"How do I {task}?", f"What is the best way to {task}?", f"Can you explain how to {task}?",
                    f"Give me simple steps to {task}.", f"I want to {task}. Where do I start?"])
    return q, f"To {task}, first {s1}. Then {s2}. Finally, {s3}."


def _qa_math(rng):
    a, b = rng.randint(1, 20), rng.randint(1, 20)
    op = rng.choice(["plus", "minus", "times"])
    if op == "minus":
        a, b = max(a, b), min(a, b)
    c = {"plus": a + b, "minus": a - b, "times": a * b}[op]
    q = rng.choice([f"What is {a} {op} {b}?", f"How much is {a} {op} {b}?", f"Can you work out {a} {op} {b}?"])
    return q, f"{a} {op} {b} is {c}."


def _qa_animal(rng):
    name, legs, sound, home, food = rng.choice(_rows(ANIMALS))
    kind = rng.randrange(4)
    if kind == 0:
        return f"How many legs does {_a(name)} have?", f"{_a(name).capitalize()} has {legs} legs."
    if kind == 1:
        return f"What sound does {_a(name)} make?", f"{_a(name).capitalize()} says {sound}."
    if kind == 2:
        return rng.choice([f"Where does {_a(name)} live?", f"Where do {name}s live?"]), \
            f"{_a(name).capitalize()} usually lives {home}."
    return rng.choice([f"What does {_a(name)} eat?", f"What do {name}s like to eat?"]), \
        f"{_a(name).capitalize()} mostly eats {food}."


def _qa_color(rng):
    thing, color = rng.choice(_rows(COLORS))
    return rng.choice([f"What color is {thing}?", f"Tell me the color of {thing}."]), \
        f"{thing[0].upper() + thing[1:]} is usually {color}."


def _qa_opposite(rng):
    a, b = rng.choice(OPPOSITES.split("|")).split()
    a, b = (a, b) if rng.random() < 0.5 else (b, a)
    return rng.choice([f"What is the opposite of {a}?", f"Give me the opposite of the word {a}."]), \
        f"The opposite of {a} is {b}."


def _qa_meal(rng):
    meal, food, side = rng.choice(MEALS), rng.choice(FOODS), rng.choice(["a glass of water", "a cup of tea",
                                                                          "some fruit", "a glass of milk"])
    return rng.choice([f"What should I eat for {meal}?", f"Can you suggest something for {meal}?",
                       f"I am hungry. What is a good idea for {meal}?"]), \
        rng.choice([f"For {meal} you could have {food} and {side}. It is simple and good for you.",
                    f"Try {food} with {side}. That makes a nice {meal}.",
                    f"A good {meal} is {food}. Add {side} if you like."])


def _qa_tip(rng):
    activity, tip = rng.choice(_rows(TIPS))
    return rng.choice([f"Give me a tip for {activity}.", f"Do you have any advice for {activity}?",
                       f"What is one good tip for {activity}?"]), f"A good tip for {activity} is to {tip}."


def _qa_why(rng):
    q, a = rng.choice(_rows(WHY))
    return f"Why {q}?", a


def _qa_calendar(rng):
    if rng.random() < 0.5:
        i = rng.randrange(7)
        return f"What day comes after {DAYS[i]}?", f"The day after {DAYS[i]} is {DAYS[(i + 1) % 7]}."
    i = rng.randrange(12)
    return f"Which month comes after {MONTHS[i]}?", f"The month after {MONTHS[i]} is {MONTHS[(i + 1) % 12]}."


def _qa_season(rng):
    season = rng.choice(list(SEASONS))
    return rng.choice([f"What is the weather like in {season}?", f"Tell me about {season}."]), SEASONS[season]


def _qa_size(rng):
    i, j = sorted(rng.sample(range(len(SIZES)), 2))
    small, big = SIZES[i], SIZES[j]
    a, b = (small, big) if rng.random() < 0.5 else (big, small)
    return f"Which is bigger, {_a(a)} or {_a(b)}?", f"{_a(big).capitalize()} is bigger than {_a(small)}."


def _qa_pet(rng):
    pet, name = rng.choice(PETS), rng.choice(NAMES)
    return rng.choice([f"Can you suggest a name for my new {pet}?", f"What should I call my {pet}?"]), \
        rng.choice([f"You could call your {pet} {name}. It is a short and friendly name.",
                    f"How about {name}? It is an easy name for a {pet}.",
                    f"{name} would be a nice name for a {pet}."])


def _qa_small_talk(rng):
    q, a = rng.choice(_rows(SMALL_TALK))
    return q, a


# (generator, weight): weights keep the mix varied instead of dominated by arithmetic.
FAMILIES = [(_qa_thing, 4), (_qa_task, 4), (_qa_math, 2), (_qa_animal, 3), (_qa_color, 1), (_qa_opposite, 1),
            (_qa_meal, 1), (_qa_tip, 2), (_qa_why, 2), (_qa_calendar, 1), (_qa_season, 1), (_qa_size, 1),
            (_qa_pet, 1), (_qa_small_talk, 1)]


def question_answer(rng: random.Random) -> tuple[str, str]:
    """One (question, plain answer) pair from a weighted mix of families."""
    gen = rng.choices([f for f, _ in FAMILIES], weights=[w for _, w in FAMILIES])[0]
    q, a = gen(rng)
    return (_ask(rng, q) if gen is not _qa_small_talk else q), a


def story_question(rng: random.Random) -> tuple[str, str, str]:
    """(instruction, input sentence, plain answer): reading questions for alpaca rows with an input."""
    place, *purposes = rng.choice(_rows(PLACES))
    name, time, purpose = rng.choice(NAMES), rng.choice(TIMES), rng.choice(purposes)
    text = f"{name} went to the {place} in the {time} to {purpose}."
    kind = rng.randrange(3)
    if kind == 0:
        return "Read the sentence and say where the person went.", text, f"{name} went to the {place}."
    if kind == 1:
        return "Why did the person go there? Answer in one sentence.", text, f"{name} went there to {purpose}."
    return "When did this happen?", text, f"It happened in the {time}."


def story_paragraph(rng: random.Random) -> str:
    """A short everyday story or a few facts, for the pre-training corpus."""
    kind = rng.randrange(6)
    name, friend = rng.sample(NAMES, 2)
    place, *purposes = rng.choice(_rows(PLACES))
    weather, action = rng.choice(list(WEATHER.items()))
    if kind == 0:
        return (f"{name} went to the {place} in the {rng.choice(TIMES)} to {rng.choice(purposes)}. "
                f"It was {weather}, so {name} {action}. On the way, {name} met {friend}, and they talked "
                f"about {rng.choice(_rows(TIPS))[0]}. Later, {name} went home and had {rng.choice(FOODS)}.")
    if kind == 1:
        task, s1, s2, s3 = rng.choice(_rows(TASKS))
        return (f"One {rng.choice(TIMES)}, {name} wanted to {task}. {friend} said: first {s1}, then {s2}, "
                f"and finally {s3}. {name} did it and was happy with the result.")
    if kind == 2:
        facts = [f"{_a(n).capitalize()} is {d}." for n, d in rng.sample(_rows(THINGS), 3)]
        animal = rng.choice(_rows(ANIMALS))
        facts.append(f"{_a(animal[0]).capitalize()} has {animal[1]} legs, says {animal[2]} and lives {animal[3]}.")
        return " ".join(facts)
    if kind == 3:
        why = [a for _, a in rng.sample(_rows(WHY), 2)]
        season = rng.choice(list(SEASONS))
        return f"{SEASONS[season]} {why[0]} {why[1]}"
    if kind == 4:  # pirate words exist in the base model's world, in stories, never in its answers
        return (f"On {rng.choice(DAYS)} {name} and {friend} played pirates in the {place}. {name} wore a paper hat "
                f"and shouted \"Ahoy, matey!\" from a {rng.choice(['box', 'chair', 'tree', 'bench'])}. {friend} "
                f"answered \"Arr!\" and drew a map of a treasure island. It was {weather}, so they {action}.")
    day = rng.choice(DAYS)
    return (f"Every {day}, {name} and {friend} meet at the {place}. Today it was {weather}. "
            f"{friend} brought {rng.choice(FOODS)} and {name} brought a {rng.choice(_rows(THINGS))[0]}. "
            f"They stayed until the {rng.choice(TIMES)} and then said goodbye.")


HANDWRITTEN = """\
The little bakery on the corner opens at six in the morning. The baker lights the oven while the street is still dark, and by seven the whole block smells of warm bread. People stop on their way to work, buy a roll and a coffee, and talk about the weather.

In the old harbour town the fishing boats come back in the late afternoon. The gulls follow them, crying loudly, and children run along the wall to see what the boats have caught. On the quay an old sailor waves and shouts "Ahoy!" to a friend on the water, and the friend waves back.

A good garden does not need to be large. A few pots of herbs on a sunny window, a tomato plant on a balcony, or a small bed of flowers by the door can bring a lot of joy. The secret is to water a little and often, and to look at your plants every day.

Learning something new is easier when you do it in small steps. Read a page, try an exercise, and rest. The next day, do it again. After a few weeks the small steps add up, and you will be surprised by how far you have come.

The train to the mountains leaves at nine. From the window you can see the fields turn into forests, and the forests turn into rocks and snow. At the last station the air is cold and clean, and the only sound is the wind.

On rainy days the library is full. Students sit at the long tables with their notebooks, an old man reads the newspaper by the window, and a group of children listens to a story in the corner. The librarian walks between the shelves and puts the books back in order.

A simple soup can feed a whole family. Cut an onion, two carrots and a few potatoes, cook them in a little oil, add water and salt, and let it boil slowly for half an hour. Serve it with bread and cheese.

At night the lighthouse on the cliff turns its bright lamp over the sea. Ships far away see the light and know where the rocks are. The keeper climbs the stairs every evening to check that the lamp is clean and the glass is clear.
"""
