"""A deterministic e-commerce site map of N distinct pages with Zipf-like popularity.

Page 0 is the home page, then fixed pages (checkout, cart, search, about, contact), categories, products and
blog posts. Every index has a distinct path; strings are built on demand and cached, so a site of a million
pages costs only its popularity tables until pages are used. Popularity: the page at popularity rank r
(home is rank 0, the rest in a seed-shuffled order) is drawn with probability proportional to 1 / (r + 1)^s.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

HOME, CHECKOUT, THANK_YOU, CART, SEARCH = 0, 1, 2, 3, 4
_FIXED = (
    ("/", "Gnomon Shop — Home"),
    ("/checkout", "Checkout"),
    ("/checkout/thank-you", "Thank you for your order"),
    ("/cart", "Your cart"),
    ("/search", "Search"),
    ("/about", "About us"),
    ("/contact", "Contact"),
    ("/shipping", "Shipping & returns"),
)
MIN_PAGES = len(_FIXED) + 2
_NOT_BROWSED = (CHECKOUT, THANK_YOU)  # reached only through the purchase funnel

_CATEGORIES = (
    "shoes", "bags", "scarves", "hats", "jackets", "shirts", "trousers", "socks", "watches", "belts",
    "sunglasses", "gloves", "wallets", "jewellery", "sportswear", "kids", "home", "kitchen", "garden", "toys",
)  # fmt: skip
_ADJECTIVES = (
    "classic", "urban", "vintage", "slim", "cosy", "bold", "light", "rugged", "soft", "bright",
    "midnight", "coastal", "alpine", "modern", "retro", "everyday", "travel", "studio", "field", "summer",
)  # fmt: skip
_MATERIALS = ("wool", "leather", "cotton", "linen", "denim", "canvas", "suede", "cashmere", "silk", "merino")
_TOPICS = (
    "how-to-choose", "care-guide", "style-tips", "behind-the-seams", "gift-guide", "size-guide",
    "sustainability-report", "new-season-lookbook", "customer-stories", "materials-explained",
)  # fmt: skip


class SiteMap:
    """`pages` distinct pages of `site` (an origin like https://shop.example). Raises ValueError if too small."""

    def __init__(self, pages: int, *, site: str, seed: int, zipf_s: float = 1.07) -> None:
        if pages < MIN_PAGES:
            raise ValueError(f"a site needs at least {MIN_PAGES} pages, not {pages}")
        self.pages = pages
        self.site = site.rstrip("/")
        self.n_categories = max(3, min(len(_CATEGORIES), pages // 50))
        rest = pages - len(_FIXED) - self.n_categories
        self.first_product = len(_FIXED) + self.n_categories
        self.n_products = max(1, rest * 7 // 10)
        self.first_blog = self.first_product + self.n_products
        rng = np.random.default_rng([seed, 0x5173])
        browsed = np.setdiff1d(np.arange(1, pages), np.array(_NOT_BROWSED))
        self._rank_to_page = np.concatenate(([HOME], rng.permutation(browsed))).astype(np.int64)
        self._cdf = _zipf_cdf(len(self._rank_to_page), zipf_s)
        self._product_rank = rng.permutation(self.n_products).astype(np.int64) + self.first_product
        self._product_cdf = _zipf_cdf(self.n_products, zipf_s)
        # prices: log-normal around 35 in the shop's currency, rounded to cents, as micros
        price = np.exp(rng.normal(3.55, 0.8, self.n_products)).clip(2, 2_000)
        self._price_micros = (np.round(price, 2) * 1_000_000).astype(np.int64)
        self.path = lru_cache(maxsize=1 << 18)(self._path)
        self.title = lru_cache(maxsize=1 << 18)(self._title)

    def sample(self, u: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Browsed pages for uniform draws `u` in [0, 1) (vectorized)."""
        ranks = np.searchsorted(self._cdf, u, side="right").clip(0, len(self._cdf) - 1)
        pages: npt.NDArray[np.int64] = self._rank_to_page[ranks]
        return pages

    def sample_products(self, u: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Product pages for uniform draws `u` (Zipf over products)."""
        ranks = np.searchsorted(self._product_cdf, u, side="right").clip(0, self.n_products - 1)
        pages: npt.NDArray[np.int64] = self._product_rank[ranks]
        return pages

    def price_micros(self, product_pages: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Unit price (micros) of product pages."""
        return self._price_micros[product_pages - self.first_product]

    def kind(self, page: int) -> str:
        """fixed, category, product or blog."""
        if page < len(_FIXED):
            return "fixed"
        if page < self.first_product:
            return "category"
        return "product" if page < self.first_blog else "blog"

    def url(self, page: int) -> str:
        return self.site + self.path(page)

    def sku(self, page: int) -> str:
        return f"SKU-{page - self.first_product:07d}"

    def _path(self, page: int) -> str:
        if not 0 <= page < self.pages:
            raise IndexError(page)
        kind = self.kind(page)
        if kind == "fixed":
            return _FIXED[page][0]
        if kind == "category":
            return f"/c/{_CATEGORIES[page - len(_FIXED)]}"
        if kind == "product":
            n = page - self.first_product
            category = _CATEGORIES[n % self.n_categories]
            adjective, material = _ADJECTIVES[(n // 7) % len(_ADJECTIVES)], _MATERIALS[(n // 3) % len(_MATERIALS)]
            return f"/p/{category}/{adjective}-{material}-{category.rstrip('s')}-{n}"
        n = page - self.first_blog
        return f"/blog/{2019 + n % 7}/{_TOPICS[n % len(_TOPICS)]}-{n}"

    def _title(self, page: int) -> str:
        kind = self.kind(page)
        if kind == "fixed":
            return _FIXED[page][1]
        slug = self._path(page).rsplit("/", 1)[-1]
        words = slug.replace("-", " ").rsplit(" ", 1)[0] if kind != "category" else slug
        suffix = {"category": "Shop", "product": "Gnomon Shop", "blog": "Gnomon Journal"}[kind]
        return f"{words.capitalize()} | {suffix}"


def _zipf_cdf(n: int, s: float) -> npt.NDArray[np.float64]:
    weights = 1.0 / np.power(np.arange(1, n + 1, dtype=np.float64), s)
    cdf = np.cumsum(weights)
    result: npt.NDArray[np.float64] = cdf / cdf[-1]
    return result
