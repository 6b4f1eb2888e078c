"""Payments: moving money, judged from the tool name's words and the arguments.

A payment server's tools (Stripe, PayPal, Square, ...) that list, retrieve or search move no
money. Refunds, charges, transfers, payouts and subscription changes are held. Limit: the scan
reads tool names, not the payment provider's semantics; a tool named unlike any of these words
is not recognised (write a policy rule for it).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from bastion.guard.policy.catalogue.base import Entry, Finding, Severity, entry
from bastion.guard.policy.catalogue.view import CallView
from bastion.model import Decision

ASK, DENY = Decision.ASK, Decision.DENY
C, H, M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM

ENTRIES: tuple[Entry, ...] = (
    entry("payment.refund", "Issue a refund", "A refund to a customer.", H, ASK),
    entry("payment.charge", "Charge a customer", "Creating, confirming or capturing a charge or payment intent.", H,
          ASK),
    entry("payment.transfer", "Transfer funds", "A transfer of funds to another account.", C, ASK),
    entry("payment.payout", "Pay out to a bank account", "A payout from the balance to a bank account or card.", C,
          ASK),
    entry("payment.subscription_change", "Change or cancel a subscription", "Cancelling, pausing or changing the "
          "plan of a customer's subscription.", M, ASK),
    entry("payment.invoice_change", "Finalize, pay, send or void an invoice", "Invoices that bill or forgive a "
          "customer.", M, ASK),
    entry("payment.price_change", "Create prices, coupons or discounts", "Prices and coupons change what customers "
          "pay.", M, ASK),
    entry("payment.customer_delete", "Delete a customer or payment method", "A customer record, card or bank "
          "account removed.", H, ASK),
    entry("payment.dispute_close", "Close a dispute", "Accepting a dispute concedes the money.", M, ASK),
    entry("payment.large_amount", "Large amount", "A money-moving call for more than 1,000.00 in minor units "
          "(amount > 100000).", C, DENY),
)  # fmt: skip
_BY_ID = {e.id: e for e in ENTRIES}
_READ = frozenset({"list", "get", "retrieve", "search", "read", "find", "lookup", "documentation", "docs", "fetch"})
_MONEY_SERVERS = frozenset({"stripe", "paypal", "square", "braintree", "adyen", "payments", "payment", "billing",
                            "checkout", "mollie", "razorpay", "plaid", "wise", "bank"})  # fmt: skip
LARGE_AMOUNT = 100_000


def _entry_for(words: frozenset[str]) -> str | None:
    if "refund" in words or "refunds" in words:
        return "payment.refund"
    if words & {"transfer", "transfers", "wire"}:
        return "payment.transfer"
    if words & {"payout", "payouts", "withdraw", "withdrawal"}:
        return "payment.payout"
    if words & {"charge", "charges", "capture", "pay"} or (
        words & {"intent", "payment"} and words & {"create", "confirm"}
    ):
        return "payment.charge"
    if words & {"subscription", "subscriptions"} and words & {"cancel", "update", "delete", "pause", "resume",
                                                                "create", "modify"}:  # fmt: skip
        return "payment.subscription_change"
    if words & {"invoice", "invoices"} and words & {"finalize", "pay", "send", "void", "uncollectible"}:
        return "payment.invoice_change"
    if words & {"price", "prices", "coupon", "coupons", "discount", "promotion"} and words & {"create", "update"}:
        return "payment.price_change"
    if words & {"customer", "source", "card", "method"} and words & {"delete", "detach", "remove"}:
        return "payment.customer_delete"
    if "dispute" in words and words & {"close", "accept"}:
        return "payment.dispute_close"
    return None


@lru_cache(maxsize=4096)
def _tool_entry(tool_words: frozenset[str], words: frozenset[str]) -> str | None:
    """The entry a tool's name says it acts on (it depends on the tool and server names alone: cached)."""
    if tool_words & _READ:
        return None
    money_context = bool(words & _MONEY_SERVERS) or bool(
        tool_words & {"refund", "payout", "charge", "funds", "money", "payment"}
    )
    return _entry_for(tool_words) if money_context else None


def detect(call: CallView) -> Iterator[Finding]:
    eid = _tool_entry(call.tool_words, call.words)
    if eid is None:
        return
    yield Finding(_BY_ID[eid], f"tool {call.tool} on {call.server or 'this server'}", "arguments")
    amount = call.scalar("amount", "amount_cents", "value", "total")
    if amount is not None and not isinstance(amount.value, bool) and amount.value > LARGE_AMOUNT:
        yield Finding(_BY_ID["payment.large_amount"], f"amount {amount.value:g} in {amount.path}", amount.path)
