"""What a Plaid Link asks for, per kind of institution, and what a Link that cannot open says.

Plaid refuses an Item at an institution that does not support every product in `products`
(PRODUCTS_NOT_SUPPORTED), so the request follows the coverage map's kind:

    brokerage, retirement   products ["investments"]
    bank                    products ["transactions"] (accounts and balances, depository and
                            credit alike), required_if_supported_products ["investments"]: a
                            bank's brokerage accounts come with it where the bank offers them,
                            and a bank without investments still links
    not in the map          products ["investments"]: Hosted Link's own search then lists the
                            institutions that can show holdings

`balance` is never named (Plaid refuses it in Link; every Item has it).
"""

from __future__ import annotations

from dataclasses import dataclass

from brokerlink.domain.errors import ProviderError, TechnicalError
from brokerlink.errors import BrokerlinkError

__all__ = [
    "BANK_PRODUCTS",
    "INVESTMENT_PRODUCTS",
    "LinkNotOpened",
    "LinkProducts",
    "link_not_opened",
    "products_for",
]


@dataclass(frozen=True)
class LinkProducts:
    """Plaid's three product lists of `/link/token/create` (no product in two of them)."""

    products: tuple[str, ...]
    required_if_supported: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.products:
            raise ValueError("Plaid needs at least one product in `products`")
        named = [*self.products, *self.required_if_supported, *self.optional]
        if len(set(named)) != len(named):
            raise ValueError(f"a product is in two lists: {named}")
        if "balance" in named:
            raise ValueError("balance is not a Link product")


INVESTMENT_PRODUCTS = LinkProducts(("investments",))
BANK_PRODUCTS = LinkProducts(("transactions",), required_if_supported=("investments",))


def products_for(kind: str | None) -> LinkProducts:
    """The products to ask for at an institution of this coverage-map kind (None: unknown)."""
    return BANK_PRODUCTS if kind == "bank" else INVESTMENT_PRODUCTS


class LinkNotOpened(BrokerlinkError):
    """Plaid would not open Link for this institution; the message is for the person, `reason`
    is Plaid's own error code for programs."""

    code = "link_not_opened"

    status_code = 422

    def __init__(self, message: str, *, status_code: int = 422, reason: str | None) -> None:
        super().__init__(message, status_code=status_code)
        self.reason = reason


_WORDS = {
    "INVALID_INSTITUTION": "Plaid does not know {name}, so it cannot be connected here",
    "INSTITUTION_NOT_FOUND": "Plaid does not know {name}, so it cannot be connected here",
    "INSTITUTION_NOT_SUPPORTED": "Plaid does not support connecting {name}",
    "PRODUCTS_NOT_SUPPORTED": "{name} does not share the data this app needs through Plaid",
    "PRODUCT_NOT_SUPPORTED": "{name} does not share the data this app needs through Plaid",
    "INSTITUTION_DOWN": "{name} is not answering Plaid right now; try again in a few minutes",
    "INSTITUTION_NOT_RESPONDING": "{name} is not answering Plaid right now; try again in a few "
    "minutes",
}


def link_not_opened(error: ProviderError, name: str) -> Exception:
    """A failed `/link/token/create` in plain words, with no endpoint name or error code in the
    message. A refusal becomes `LinkNotOpened` (422, Plaid's code as `reason`); a technical
    failure stays in its family (the API answers it as a retryable provider failure), only
    its words change."""
    technical = isinstance(error, TechnicalError)
    words = _WORDS.get(error.code or "") or (
        "Plaid is not answering right now; try again in a few minutes"
        if technical
        else "Plaid refused to open a connection to {name}; nothing was connected"
    )
    message = words.format(name=name) + "."
    if technical:
        error.operation = f"the connection to {name}"
        error.message = message
        return error
    return LinkNotOpened(message, status_code=422, reason=error.code)
