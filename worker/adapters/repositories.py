"""The product and order repositories: hand-written SQL on the hot paths.

Most commands touch orders and stock, so these repositories skip the ORM (see
sql.py) and load/save the plain domain objects themselves. Rows they update are
locked first (`FOR UPDATE`); orders and products still carry a `version` that every
update checks and bumps, so a write based on a stale read fails loudly
(`StaleVersion`, transient) instead of overwriting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from worker.adapters.errors import TransientError
from worker.adapters.sql import Sql
from worker.domain.orders import Order, OrderItem, Product, StockLevel, StockMovement


class StaleVersion(TransientError):
    """An update matched no row at the version that was read."""


# -- products and stock -------------------------------------------------------------------

# One global lock order, product id ascending, so two orders can never deadlock.
_LOCK_BY_SKUS = """
    SELECT p.id, p.sku, p.name, p.price_cents, p.version, s.on_hand, s.reserved
    FROM products p JOIN stock_levels s ON s.product_id = p.id
    WHERE p.sku = ANY(%s)
    ORDER BY p.id
    FOR UPDATE OF s
"""
_LOCK_STOCK = """
    SELECT product_id, on_hand, reserved FROM stock_levels
    WHERE product_id = ANY(%s) ORDER BY product_id FOR UPDATE
"""
_CREATE_PRODUCT = """
    WITH created AS (
        INSERT INTO products (sku, name, price_cents) VALUES (%s, %s, %s)
        ON CONFLICT (sku) DO NOTHING RETURNING id
    )
    INSERT INTO stock_levels (product_id) SELECT id FROM created RETURNING product_id
"""
_SAVE_PRODUCT = """
    UPDATE products SET name = %s, price_cents = %s, version = version + 1, updated_at = now()
    WHERE id = %s AND version = %s
"""
_SAVE_STOCK = """
    UPDATE stock_levels SET on_hand = %s, reserved = %s, updated_at = now()
    WHERE product_id = %s
"""
_ADD_MOVEMENT = """
    INSERT INTO stock_movements
        (product_id, order_id, on_hand_delta, reserved_delta, reason, command_key)
    VALUES (%s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True)
class ProductRow:
    """A product with its stock, as a batch last wrote it."""

    id: int
    sku: str
    name: str
    price_cents: int
    version: int
    on_hand: int
    reserved: int

    def product(self) -> Product:
        product = Product(self.sku, self.name, self.price_cents)
        product.id, product.version = self.id, self.version
        product.stock = StockLevel(self.id, self.on_hand, self.reserved)
        return product


@dataclass
class HeldProducts:
    """Product and stock rows a batch locked up front, kept up to date as its commands
    write them: a batch of orders for one SKU reads the row from the database once.

    Commands of the batch read these rows (`lock_by_skus`, `lock_stock`) from here and
    write through to the database; a command's writes become the batch's view only if
    its savepoint is kept (`ProductRepository.keep`)."""

    rows: dict[int, ProductRow] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)

    def add(self, row: ProductRow) -> None:
        self.rows[row.id] = row
        self.ids[row.sku] = row.id


class ProductRepository:
    """Products and their stock rows."""

    def __init__(self, sql: Sql, held: HeldProducts | None = None) -> None:
        self.sql = sql
        self.held = held
        #: this command's writes to held rows, not yet the batch's view
        self._written: dict[int, ProductRow] = {}

    def _held_row(self, product_id: int) -> ProductRow | None:
        if self.held is None:
            return None
        return self._written.get(product_id) or self.held.rows.get(product_id)

    def keep(self) -> None:
        """This command's savepoint is kept: its writes become the batch's view."""
        if self.held is not None:
            self.held.rows.update(self._written)
        self._written.clear()

    def lock_by_skus(self, skus: Iterable[str]) -> dict[str, Product]:
        """Products for `skus` with their stock rows locked `FOR UPDATE`, in id order."""
        wanted = list(skus)
        if self.held is not None and all(sku in self.held.ids for sku in wanted):
            rows = [self._held_row(self.held.ids[sku]) for sku in wanted]
            return {row.sku: row.product() for row in rows if row is not None}
        found = {}
        for pid, sku, name, price, version, on_hand, reserved in self.sql.all(
            _LOCK_BY_SKUS, (wanted,)
        ):
            product = Product(sku, name, price)
            product.id, product.version = pid, version
            product.stock = StockLevel(pid, on_hand, reserved)
            found[sku] = product
        return found

    def lock_stock(self, product_ids: Iterable[int]) -> dict[int, StockLevel]:
        """Stock rows of `product_ids`, locked `FOR UPDATE` in id order."""
        ids = sorted(set(product_ids))
        held = [self._held_row(pid) for pid in ids]
        if ids and all(row is not None for row in held):
            return {row.id: StockLevel(row.id, row.on_hand, row.reserved) for row in held if row}
        rows = self.sql.all(_LOCK_STOCK, (ids,))
        return {pid: StockLevel(pid, on_hand, reserved) for pid, on_hand, reserved in rows}

    def ensure(self, sku: str, name: str, price_cents: int) -> tuple[Product, bool]:
        """The product for `sku`, locked, created with empty stock if it did not exist.

        `INSERT … ON CONFLICT DO NOTHING` makes two concurrent creations of one SKU
        safe: the second waits for the first and then finds its row.
        """
        created = self.sql.one(_CREATE_PRODUCT, (sku, name, price_cents)) is not None
        return self.lock_by_skus([sku])[sku], created

    def save(self, product: Product) -> None:
        touched = self.sql.execute(
            _SAVE_PRODUCT, (product.name, product.price_cents, product.id, product.version)
        )
        if touched != 1:
            raise StaleVersion(f"product {product.sku} changed since it was read")
        product.version += 1
        row = self._held_row(product.id)
        if row is not None:
            self._written[row.id] = replace(
                row, name=product.name, price_cents=product.price_cents, version=product.version
            )

    def save_stock(self, levels: Iterable[StockLevel]) -> None:
        saved = list(levels)
        self.sql.executemany(_SAVE_STOCK, [(s.on_hand, s.reserved, s.product_id) for s in saved])
        for level in saved:
            row = self._held_row(level.product_id)
            if row is not None:
                self._written[row.id] = replace(row, on_hand=level.on_hand, reserved=level.reserved)

    def add_movements(self, movements: Iterable[StockMovement]) -> None:
        self.sql.executemany(
            _ADD_MOVEMENT,
            [
                (
                    m.product_id,
                    m.order.id if m.order is not None else None,
                    m.on_hand_delta,
                    m.reserved_delta,
                    str(m.reason),
                    m.command_key,
                )
                for m in movements
            ],
        )


# -- customers ----------------------------------------------------------------------------

# A customer's first order creates the row; later ones touch it only when they bring
# contact details (DO NOTHING takes no row lock, so repeat orders of one customer do
# not queue on it). Details given replace the stored ones; absent ones are kept.
_NOTE_CUSTOMER = """
    INSERT INTO customers (customer_ref) VALUES (%s) ON CONFLICT (customer_ref) DO NOTHING
"""
_UPSERT_CUSTOMER = """
    INSERT INTO customers AS c (customer_ref, name, email, phone, phone_digits)
    VALUES (%(ref)s, %(name)s, %(email)s, %(phone)s, %(phone_digits)s)
    ON CONFLICT (customer_ref) DO UPDATE SET
        name = coalesce(excluded.name, c.name),
        email = coalesce(excluded.email, c.email),
        phone = coalesce(excluded.phone, c.phone),
        phone_digits = CASE WHEN excluded.phone IS NULL THEN c.phone_digits
                            ELSE excluded.phone_digits END,
        version = c.version + 1,
        updated_at = now()
    WHERE (excluded.name IS NOT NULL AND excluded.name IS DISTINCT FROM c.name)
       OR (excluded.email IS NOT NULL AND excluded.email IS DISTINCT FROM c.email)
       OR (excluded.phone IS NOT NULL
           AND (excluded.phone, excluded.phone_digits) IS DISTINCT FROM (c.phone, c.phone_digits))
"""


class CustomerRepository:
    """The shop's customers, by the `customer_ref` their orders carry."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    def note(self, customer_ref: str, details: dict[str, str | None] | None) -> None:
        """Make sure the customer exists; store the contact details given (name, email,
        phone, phone_digits — None keeps the stored value)."""
        if not details or all(value is None for value in details.values()):
            self.sql.execute(_NOTE_CUSTOMER, (customer_ref,))
            return
        self.sql.execute(_UPSERT_CUSTOMER, {"ref": customer_ref, **details})


# -- orders -------------------------------------------------------------------------------

_ADD_ORDER = """
    INSERT INTO orders (idempotency_key, customer_ref, status, total_cents)
    VALUES (%s, %s, %s, %s) RETURNING id, order_number, version, created_at
"""
_ADD_ITEM = """
    INSERT INTO order_items
        (order_id, product_id, sku, qty, unit_price_cents, line_total_cents)
    VALUES (%s, %s, %s, %s, %s, %s)
"""
_ORDER_COLUMNS = (
    "id, order_number, idempotency_key, customer_ref, status, total_cents, version, created_at"
)
_LOCK_ORDER = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_number = %s FOR UPDATE"
_ORDER_BY_KEY = f"SELECT {_ORDER_COLUMNS} FROM orders WHERE idempotency_key = %s"
_ITEMS = """
    SELECT product_id, sku, qty, unit_price_cents FROM order_items
    WHERE order_id = %s ORDER BY id
"""
_SAVE_ORDER = """
    UPDATE orders SET status = %s, version = version + 1, updated_at = now()
    WHERE id = %s AND version = %s
"""


class OrderRepository:
    """Orders, looked up by their human-readable number."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    def add(self, order: Order) -> None:
        """Insert the order row; the order number comes from the sequence. Its lines
        follow with `add_items` (which can join a batch of writes)."""
        row = self.sql.one(
            _ADD_ORDER,
            (order.idempotency_key, order.customer_ref, str(order.status), order.total_cents),
        )
        assert row is not None
        order.id, order.order_number, order.version, order.created_at = row

    def add_items(self, order: Order) -> None:
        self.sql.executemany(
            _ADD_ITEM,
            [
                (order.id, i.product_id, i.sku, i.qty, i.unit_price_cents, i.line_total_cents)
                for i in order.items
            ],
        )

    def save(self, order: Order) -> None:
        touched = self.sql.execute(_SAVE_ORDER, (str(order.status), order.id, order.version))
        if touched != 1:
            raise StaleVersion(f"order {order.order_number} changed since it was read")
        order.version += 1

    def lock_by_number(self, order_number: str) -> Order | None:
        """The order with `order_number`, its row locked so transitions serialize."""
        return self._load(_LOCK_ORDER, order_number)

    def by_idempotency_key(self, key: str) -> Order | None:
        """The order created by the command with idempotency key `key`, if any."""
        return self._load(_ORDER_BY_KEY, key)

    def _load(self, query: str, value: str) -> Order | None:
        row = self.sql.one(query, (value,))
        if row is None:
            return None
        order_id, number, key, customer, status, total, version, created_at = row
        items = [OrderItem(*item) for item in self.sql.all(_ITEMS, (order_id,))]
        order = Order(key, customer, items)
        order.id, order.order_number, order.version, order.created_at = (
            order_id,
            number,
            version,
            created_at,
        )
        order.status, order.total_cents = status, total
        return order
