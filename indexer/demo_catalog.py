"""A deterministic, realistic demo catalog written from templates.

ShopRank ships no third-party catalog; this is what the main job indexes on a fresh
machine. The same `--size` and `--seed` always give the same bytes, so figures measured
on it can be rerun.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

# department -> {category -> (product nouns, brands, attribute choices, (price low, high))}
DEPARTMENTS: dict[str, dict[str, tuple[list[str], list[str], dict[str, list[str]], tuple[float, float]]]] = {
    "Furniture": {
        "Living Room > Sofas": (["Sofa", "Sectional Sofa", "Loveseat", "Sleeper Sofa"], ["Ashford", "Nordhaven", "Carraway"], {"color": ["gray", "navy", "beige", "green", "charcoal"], "material": ["linen", "velvet", "leather", "microfiber"]}, (399, 2499)),
        "Living Room > Coffee Tables": (["Coffee Table", "Lift-Top Coffee Table", "Nesting Tables"], ["Nordhaven", "Oakline", "Carraway"], {"color": ["walnut", "black", "white", "natural"], "material": ["oak", "walnut", "glass", "metal"]}, (89, 699)),
        "Bedroom > Beds": (["Platform Bed", "Upholstered Bed", "Storage Bed", "Bunk Bed"], ["Dreamwell", "Oakline", "Ashford"], {"size": ["twin", "full", "queen", "king"], "material": ["pine", "oak", "metal", "upholstered"]}, (199, 1899)),
        "Office > Desks": (["Standing Desk", "Writing Desk", "L-Shaped Desk", "Computer Desk"], ["Workwell", "Oakline", "Deskpro"], {"color": ["black", "white", "walnut", "gray"], "material": ["oak", "bamboo", "metal", "laminate"]}, (99, 999)),
    },
    "Kitchen": {
        "Cookware > Pans": (["Frying Pan", "Saute Pan", "Grill Pan", "Wok"], ["Calder", "Ironridge", "Chefmark"], {"material": ["cast iron", "stainless steel", "nonstick", "carbon steel"], "size": ["8 in.", "10 in.", "12 in."]}, (19, 249)),
        "Appliances > Blenders": (["Blender", "Personal Blender", "Immersion Blender"], ["Vortexa", "Chefmark", "Brightline"], {"color": ["black", "red", "silver", "white"], "wattage": ["300 W", "700 W", "1200 W", "1500 W"]}, (29, 499)),
        "Appliances > Coffee Makers": (["Coffee Maker", "Espresso Machine", "Pour-Over Kettle", "Cold Brew Maker"], ["Brewster", "Vortexa", "Chefmark"], {"color": ["black", "stainless", "white", "red"], "capacity": ["4 cups", "8 cups", "12 cups"]}, (24, 899)),
        "Cutlery > Knives": (["Chef's Knife", "Santoku Knife", "Knife Block Set", "Paring Knife"], ["Ironridge", "Calder", "Kitamura"], {"material": ["German steel", "Japanese steel", "ceramic"], "size": ["3.5 in.", "6 in.", "8 in."]}, (15, 399)),
    },
    "Electronics": {
        "Audio > Headphones": (["Wireless Headphones", "Noise Cancelling Headphones", "Earbuds", "Studio Headphones"], ["Sonora", "Bassline", "Auralis"], {"color": ["black", "white", "blue", "rose gold"], "connectivity": ["bluetooth", "wired", "usb-c"]}, (19, 449)),
        "Audio > Speakers": (["Bluetooth Speaker", "Smart Speaker", "Soundbar", "Bookshelf Speakers"], ["Sonora", "Auralis", "Bassline"], {"color": ["black", "gray", "blue"], "connectivity": ["bluetooth", "wifi", "optical"]}, (29, 899)),
        "Computers > Laptops": (["Laptop", "Ultrabook", "Gaming Laptop", "2-in-1 Laptop"], ["Voltix", "Northbyte", "Lumina"], {"screen": ["13 in.", "14 in.", "15.6 in.", "17 in."], "memory": ["8 GB", "16 GB", "32 GB"]}, (399, 2999)),
        "Computers > Monitors": (["Monitor", "Curved Monitor", "4K Monitor", "Portable Monitor"], ["Lumina", "Voltix", "Northbyte"], {"screen": ["24 in.", "27 in.", "32 in.", "34 in."], "resolution": ["1080p", "1440p", "4K"]}, (99, 1299)),
    },
    "Outdoor": {
        "Camping > Tents": (["Backpacking Tent", "Family Tent", "Pop-Up Canopy", "Dome Tent"], ["Trailhead", "Summitco", "Pinecrest"], {"capacity": ["1 person", "2 person", "4 person", "6 person"], "color": ["green", "orange", "gray"]}, (49, 699)),
        "Grills > Gas Grills": (["Gas Grill", "Portable Gas Grill", "Griddle Station"], ["Flamecraft", "Emberline", "Pinecrest"], {"burners": ["2 burners", "3 burners", "4 burners"], "fuel": ["propane", "natural gas"]}, (149, 1499)),
        "Garden > Planters": (["Planter", "Raised Garden Bed", "Hanging Basket", "Window Box"], ["Greenfield", "Terracraft", "Pinecrest"], {"material": ["ceramic", "cedar", "resin", "terracotta"], "color": ["white", "black", "terracotta", "green"]}, (12, 249)),
    },
    "Tools": {
        "Power Tools > Drills": (["Cordless Drill", "Hammer Drill", "Impact Driver", "Drill Driver Kit"], ["Torqmax", "Boltline", "Forgeworks"], {"voltage": ["12V", "18V", "20V"], "battery": ["1.5 Ah", "2.0 Ah", "5.0 Ah"]}, (49, 399)),
        "Power Tools > Saws": (["Circular Saw", "Miter Saw", "Jigsaw", "Reciprocating Saw"], ["Torqmax", "Forgeworks", "Boltline"], {"blade": ["6-1/2 in.", "7-1/4 in.", "10 in.", "12 in."], "power": ["cordless", "corded"]}, (59, 699)),
        "Hand Tools > Wrenches": (["Adjustable Wrench", "Socket Set", "Combination Wrench Set", "Torque Wrench"], ["Forgeworks", "Steelhand", "Boltline"], {"size": ["1/4 in.", "3/8 in.", "1/2 in.", "3/4 in."], "finish": ["chrome", "black oxide"]}, (9, 299)),
    },
    "Home Improvement": {
        "Paint > Interior Paint": (["Interior Paint", "Paint and Primer", "Ceiling Paint", "Chalk Paint"], ["Colorwell", "Truecoat", "Brushline"], {"finish": ["flat", "eggshell", "satin", "semi-gloss"], "size": ["1 qt.", "1 gal.", "5 gal."]}, (14, 229)),
        "Flooring > Vinyl Flooring": (["Vinyl Plank Flooring", "Peel and Stick Tile", "Laminate Flooring"], ["Floorcraft", "Truecoat", "Hearthwood"], {"color": ["oak", "gray", "white", "hickory"], "thickness": ["2 mm", "5 mm", "8 mm"]}, (19, 129)),
        "Lighting > Ceiling Lights": (["Ceiling Fan with Light", "Flush Mount Light", "Pendant Light", "Chandelier"], ["Brightline", "Lumiere", "Hearthwood"], {"finish": ["brushed nickel", "matte black", "bronze", "brass"], "bulb": ["LED", "incandescent"]}, (29, 899)),
    },
    "Bath": {
        "Faucets > Bathroom Faucets": (["Bathroom Faucet", "Widespread Faucet", "Single-Handle Faucet", "Wall-Mount Faucet"], ["Aqualine", "Delmont", "Rivera"], {"finish": ["chrome", "brushed nickel", "matte black", "bronze"], "handles": ["1 handle", "2 handles"]}, (39, 499)),
        "Towels > Bath Towels": (["Bath Towel Set", "Hand Towel", "Bath Sheet", "Washcloth Set"], ["Softloom", "Cottonwood", "Rivera"], {"color": ["white", "gray", "navy", "sage"], "material": ["cotton", "bamboo", "linen"]}, (9, 129)),
        "Showers > Shower Heads": (["Rain Shower Head", "Handheld Shower Head", "Dual Shower Head"], ["Aqualine", "Delmont", "Rivera"], {"finish": ["chrome", "brushed nickel", "matte black"], "flow": ["1.8 GPM", "2.0 GPM", "2.5 GPM"]}, (19, 349)),
    },
    "Apparel": {
        "Men > Jackets": (["Rain Jacket", "Down Jacket", "Fleece Jacket", "Softshell Jacket"], ["Northpeak", "Trailhead", "Urbanweave"], {"color": ["black", "navy", "olive", "red"], "size": ["S", "M", "L", "XL"]}, (39, 399)),
        "Women > Shoes": (["Running Shoes", "Hiking Boots", "Sneakers", "Ankle Boots"], ["Strideon", "Northpeak", "Urbanweave"], {"color": ["black", "white", "gray", "pink"], "size": ["6", "7", "8", "9", "10"]}, (29, 249)),
        "Kids > T-Shirts": (["Graphic T-Shirt", "Long Sleeve T-Shirt", "Polo Shirt"], ["Littlesprout", "Urbanweave", "Playday"], {"color": ["blue", "red", "yellow", "green"], "size": ["XS", "S", "M", "L"]}, (7, 39)),
    },
    "Sports": {
        "Fitness > Dumbbells": (["Adjustable Dumbbells", "Hex Dumbbell", "Dumbbell Set", "Kettlebell"], ["Ironcore", "Fitforge", "Peakform"], {"weight": ["5 lb.", "10 lb.", "25 lb.", "50 lb."], "material": ["cast iron", "rubber", "neoprene"]}, (15, 599)),
        "Cycling > Bikes": (["Mountain Bike", "Road Bike", "Hybrid Bike", "Electric Bike"], ["Velocita", "Ridgeline", "Peakform"], {"frame": ["S", "M", "L"], "wheel": ["26 in.", "27.5 in.", "29 in.", "700c"]}, (299, 3499)),
        "Yoga > Yoga Mats": (["Yoga Mat", "Travel Yoga Mat", "Yoga Block Set", "Yoga Strap"], ["Zenflow", "Peakform", "Fitforge"], {"color": ["purple", "blue", "black", "teal"], "thickness": ["3 mm", "6 mm", "8 mm"]}, (9, 129)),
    },
    "Toys": {
        "Building > Building Sets": (["Building Block Set", "Magnetic Tiles", "Marble Run", "Construction Kit"], ["Brickwise", "Playday", "Tinkertown"], {"age": ["3+", "6+", "8+", "12+"], "pieces": ["100 pieces", "500 pieces", "1000 pieces"]}, (14, 199)),
        "Games > Board Games": (["Board Game", "Card Game", "Strategy Game", "Puzzle"], ["Tinkertown", "Playday", "Gamecraft"], {"players": ["2 players", "2-4 players", "2-6 players"], "age": ["6+", "8+", "12+"]}, (9, 79)),
    },
    "Pets": {
        "Dogs > Dog Beds": (["Orthopedic Dog Bed", "Bolster Dog Bed", "Elevated Dog Bed", "Dog Crate Pad"], ["Pawsome", "Barkley", "Furhaven"], {"size": ["small", "medium", "large", "x-large"], "color": ["gray", "brown", "blue"]}, (19, 199)),
        "Cats > Cat Trees": (["Cat Tree", "Cat Scratching Post", "Cat Condo", "Wall Shelf for Cats"], ["Whiskerly", "Furhaven", "Pawsome"], {"height": ["24 in.", "48 in.", "72 in."], "color": ["beige", "gray", "brown"]}, (19, 249)),
    },
    "Beauty": {
        "Skin Care > Moisturizers": (["Face Moisturizer", "Night Cream", "Hydrating Gel", "SPF 30 Moisturizer"], ["Lumara", "Purebloom", "Dermacare"], {"skin type": ["dry", "oily", "combination", "sensitive"], "size": ["1.7 oz.", "2.5 oz.", "4 oz."]}, (8, 89)),
        "Hair Care > Hair Dryers": (["Hair Dryer", "Ionic Hair Dryer", "Travel Hair Dryer", "Diffuser Dryer"], ["Silkwave", "Lumara", "Stylecraft"], {"wattage": ["1200 W", "1875 W", "2000 W"], "color": ["black", "pink", "white"]}, (19, 399)),
    },
}

ADJECTIVES = ["Classic", "Modern", "Compact", "Premium", "Essential", "Deluxe", "Heavy-Duty", "Ultra-Light", "Pro", "Eco", "Signature", "Everyday"]
SERIES = ["Series", "Collection", "Edition", "Line"]
SERIES_NAMES = ["Aspen", "Harbor", "Summit", "Cascade", "Meridian", "Willow", "Granite", "Sierra", "Coastal", "Metro", "Juniper", "Atlas"]
BENEFITS = [
    "built to last for years of daily use", "easy to clean and maintain", "backed by a 2-year warranty",
    "designed for small spaces", "a customer favorite for its value", "tested for durability",
    "quick and simple to set up", "made with responsibly sourced materials", "lightweight yet sturdy",
    "a great gift for any occasion",
]
DESCRIPTION_TEMPLATES = [
    "The {title} is {benefit}. {attr_sentence} Ideal for {use}.",
    "{attr_sentence} This {noun_lower} from {brand} is {benefit}, and it is {benefit2}.",
    "Meet the {title}: {benefit}. {attr_sentence} A smart pick for {use}.",
]
USES = ["everyday use", "families", "first apartments", "professionals", "weekend projects", "gifting", "busy mornings", "outdoor adventures"]


def _product(rng: random.Random, number: int) -> dict[str, Any]:
    department = rng.choice(list(DEPARTMENTS))
    category = rng.choice(list(DEPARTMENTS[department]))
    nouns, brands, attribute_choices, (low, high) = DEPARTMENTS[department][category]
    noun = rng.choice(nouns)
    brand = rng.choice(brands)
    attributes = {name: rng.choice(values) for name, values in attribute_choices.items()}
    shown = list(attributes.values())
    rng.shuffle(shown)
    adjective = rng.choice(ADJECTIVES)
    title_parts = [brand, adjective, noun]
    if rng.random() < 0.5:
        title_parts.append(f"in {shown[0].title() if shown[0].islower() else shown[0]}")
    if rng.random() < 0.35:
        title_parts.insert(2, f"{rng.choice(SERIES_NAMES)} {rng.choice(SERIES)}")
    title = " ".join(title_parts)
    attr_sentence = ", ".join(f"{k}: {v}" for k, v in attributes.items()) + "."
    attr_sentence = attr_sentence[0].upper() + attr_sentence[1:]
    benefit, benefit2 = rng.sample(BENEFITS, 2)
    description = rng.choice(DESCRIPTION_TEMPLATES).format(
        brand=brand, title=title, benefit=benefit, benefit2=benefit2, attr_sentence=attr_sentence,
        use=rng.choice(USES), noun_lower=noun.lower(),
    )
    # log-uniform prices look like a real shop: many cheap items, a long expensive tail
    price = round(low * (high / low) ** rng.random(), 0) - 0.01
    reviews = int(rng.paretovariate(1.2) * 3) - 3
    rating = round(min(5.0, max(1.0, rng.gauss(4.1, 0.6))), 1) if reviews > 0 else None
    product: dict[str, Any] = {
        "id": f"SR-{number:06d}",
        "title": title,
        "description": description,
        "brand": brand,
        "category": f"{department} > {category}",
        "price": price,
        "currency": "USD",
        "in_stock": rng.random() < 0.88,
        "review_count": max(0, reviews),
        "attributes": attributes,
        "image_url": f"https://images.example.com/products/SR-{number:06d}.jpg",
        "popularity": round(rng.paretovariate(1.5) - 1.0, 3),
    }
    if rating is not None:
        product["rating"] = rating
    return product


def generate(size: int = 20_000, seed: int = 42) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [_product(rng, number) for number in range(1, size + 1)]


def write_demo_catalog(path: str | Path, size: int = 20_000, seed: int = 42) -> Path:
    """Write the catalog as JSONL (or CSV if the path ends in .csv), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    products = generate(size, seed)
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        if path.suffix.lower() == ".csv":
            import csv

            columns = ["id", "title", "description", "brand", "category", "price", "currency", "in_stock",
                       "rating", "review_count", "attributes", "image_url", "popularity"]
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for product in products:
                row = dict(product)
                row["attributes"] = json.dumps(product["attributes"])
                writer.writerow(row)
        else:
            for product in products:
                fh.write(json.dumps(product, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
