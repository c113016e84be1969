"""Real-looking names, titles and contact details, drawn from one seeded `random.Random`.

Accented names are part of the mix on purpose (search folds accents). A few famous
works are always in the catalogue, so the search examples hold on any seeded database.
"""

from __future__ import annotations

import random

FIRST_NAMES = [
    "Ada",
    "Ben",
    "Chloé",
    "Dev",
    "Élodie",
    "Finn",
    "Grace",
    "Hugo",
    "Iris",
    "Jack",
    "Kira",
    "Liam",
    "Mia",
    "Noah",
    "Olga",
    "Piet",
    "Quinn",
    "Rosa",
    "Søren",
    "Tara",
    "Uma",
    "Vík",
    "Wren",
    "Yara",
    "Zoë",
    "Björn",
    "José",
    "Małgorzata",
    "Ana",
    "Łukasz",
    "Inés",
    "François",
    "Jürgen",
    "Núria",
    "Dagný",
    "Amélie",
    "Raúl",
    "Chiara",
    "Mateo",
    "Aoife",
    "Siobhán",
    "Nikolai",
    "Emma",
    "Oliver",
    "Amira",
    "Kenji",
    "Priya",
    "Omar",
    "Sofia",
    "Lucas",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Khan",
    "Novák",
    "García",
    "Müller",
    "Rossi",
    "Dubois",
    "Silva",
    "Kowalski",
    "Nakamura",
    "Olsen",
    "Petrov",
    "Larsen",
    "Moreau",
    "Schmidt",
    "Costa",
    "Haddad",
    "Ivanova",
    "Byrne",
    "Brontë",
    "Ó'Brien",
    "Fernández",
    "Gómez",
    "Núñez",
    "Søndergaard",
    "Łowicki",
    "Çelik",
    "Åberg",
    "Jäger",
    "Dvořák",
    "Lefèvre",
    "Castaño",
    "Pérez",
    "Walsh",
    "Murphy",
    "Patel",
    "Chen",
    "Andersson",
    "Kuznetsov",
    "Romano",
    "Bianchi",
    "Ferreira",
    "Öztürk",
    "Hughes",
]
ADJECTIVES = [
    "Silent",
    "Crimson",
    "Hidden",
    "Broken",
    "Golden",
    "Distant",
    "Quiet",
    "Burning",
    "Frozen",
    "Lost",
    "Secret",
    "Wandering",
    "Hollow",
    "Bright",
    "Forgotten",
    "Last",
    "Little",
    "Endless",
    "Wild",
    "Paper",
    "Iron",
    "Glass",
    "Salt",
    "Velvet",
    "Northern",
    "Midnight",
    "Summer",
    "Winter",
    "Drowned",
    "Painted",
]
NOUNS = [
    "River",
    "Garden",
    "Empire",
    "Ocean",
    "Forest",
    "Stone",
    "Crown",
    "Storm",
    "Island",
    "Mirror",
    "Letter",
    "Fire",
    "Harbour",
    "Valley",
    "Bridge",
    "Tower",
    "Song",
    "Light",
    "Wolf",
    "Rose",
    "Cloud",
    "City",
    "Game",
    "Heart",
    "Clock",
    "Orchard",
    "Lantern",
    "Compass",
    "Cathedral",
    "Kingdom",
    "Daughter",
    "Sister",
    "Keeper",
    "Cartographer",
    "Lighthouse",
    "Archive",
    "Map",
    "Orchestra",
    "Season",
    "Winter",
    "Journey",
    "Republic",
    "Inheritance",
    "Alphabet",
    "Weather",
]
PLACES = [
    "Kraków",
    "Lisbon",
    "Reykjavík",
    "Montréal",
    "Zürich",
    "São",
    "Paulo",
    "Córdoba",
    "Tromsø",
    "Dublin",
    "Kyoto",
    "Marrakesh",
    "Valparaíso",
    "Edinburgh",
    "Trieste",
    "Gdańsk",
    "Nîmes",
    "Bruges",
    "Oaxaca",
    "Ålesund",
    "Tbilisi",
]
TITLE_SHAPES = (
    "The {adj} {noun}",
    "{noun} of {place}",
    "The {noun} of {place}",
    "A {noun} in {place}",
    "The {adj} {noun} of {place}",
    "{adj} {noun}s",
    "The {noun}'s {noun2}",
    "Notes from the {adj} {noun}",
    "The Last {noun} of {place}",
    "{noun} and {noun2}",
)
FAMOUS_WORKS = (
    ("Harry Potter and the Philosopher's Stone", ("J. K. Rowling",)),
    ("Wuthering Heights", ("Emily Brontë",)),
    ("Jane Eyre", ("Charlotte Brontë",)),
    ("The Tenant of Wildfell Hall", ("Anne Brontë",)),
    ("Les Misérables", ("Victor Hugo",)),
    ("Cien años de soledad", ("Gabriel García Márquez",)),
    ("Der Prozess", ("Franz Kafka",)),
    ("Pan Tadeusz", ("Adam Mickiewicz",)),
    ("Brennu-Njáls saga", ()),
    ("Good Omens", ("Terry Pratchett", "Neil Gaiman")),
)
MATERIALS = [
    "Ceramic",
    "Oak",
    "Steel",
    "Linen",
    "Wool",
    "Bamboo",
    "Copper",
    "Glass",
    "Cotton",
    "Walnut",
    "Enamel",
    "Cork",
]
PRODUCTS = [
    "Mug",
    "Teapot",
    "Lamp",
    "Notebook",
    "Scarf",
    "Chair",
    "Bowl",
    "Vase",
    "Clock",
    "Blanket",
    "Kettle",
    "Tray",
    "Basket",
    "Candle",
    "Pen",
    "Backpack",
    "Jug",
    "Plate",
    "Stool",
    "Shelf",
    "Frame",
    "Cushion",
    "Apron",
    "Bottle",
]
COLOURS = [
    "Blue",
    "Red",
    "Green",
    "Ochre",
    "Grey",
    "Black",
    "White",
    "Teal",
    "Amber",
    "Plum",
    "Sage",
    "Rust",
]
MAIL_DOMAINS = ("example.org", "example.com", "mail.test", "post.example", "shop.test")
PHONE_SHAPES = (
    "020 7{a:03d} {b:04d}",  # UK, national
    "+44 (0)161 {a:03d} {b:04d}",  # UK, international with the trunk 0 in brackets
    "07{a:03d} {b:06d}",  # UK mobile
    "+33 1 {a:02d} {b:02d} {c:02d} {d:02d}",  # France
    "+49 30 {a:04d}{b:04d}",  # Germany
)


def _ascii_local(text: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum() or ch == ".") or "someone"


class Names:
    """Everything text-like the seed needs, deterministic for one `random.Random`."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def email(self, name: str, n: int) -> str:
        first, _, last = name.partition(" ")
        return f"{_ascii_local(first)}.{_ascii_local(last)}{n}@{self.rng.choice(MAIL_DOMAINS)}"

    def phone(self) -> str:
        r = self.rng.randrange
        return self.rng.choice(PHONE_SHAPES).format(
            a=r(100, 999), b=r(1000, 9999), c=r(10, 99), d=r(10, 99)
        )

    def title(self) -> str:
        shape = self.rng.choice(TITLE_SHAPES)
        return shape.format(
            adj=self.rng.choice(ADJECTIVES),
            noun=self.rng.choice(NOUNS),
            noun2=self.rng.choice(NOUNS),
            place=self.rng.choice(PLACES),
        )

    def authors(self) -> tuple[str, ...]:
        count = 1 if self.rng.random() < 0.85 else 2
        return tuple(self.person() for _ in range(count))

    def product(self) -> str:
        return (
            f"{self.rng.choice(COLOURS)} {self.rng.choice(MATERIALS)} {self.rng.choice(PRODUCTS)}"
        )
