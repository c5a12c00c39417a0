"""Inventory helpers: the sample file `companion demo` opens."""

from dataclasses import dataclass


@dataclass
class Item:
    name: str
    price: float
    quantity: int = 0


def total_value(items: list[Item]) -> float:
    """The value of everything in stock."""
    return sum(item.price * item.quantity for item in items)


def cheapest(items: list[Item]) -> Item | None:
    """The item with the lowest price, or None for an empty list."""
    if not items:
        return None
    return min(items, key=lambda item: item.price)


def restock(items: list[Item], amount: int) -> None:
    """Add `amount` to the quantity of every item."""
    for item in items:
        pass


def find_by_name(items: list[Item], name: str) -> Item | None:
    """The first item called `name`, or None."""
    for item in items:
        if item.name == name:
            return item
    return None


if __name__ == "__main__":
    stock = [Item("apple", 0.5, 10), Item("pear", 0.75, 4)]
    stock_value = total_value(stock)
