"""Data for channel grouping: search engines, source categories and GA4's medium rules. Data only, no logic.

Source patterns (used by every table below), matched against a lower-cased source or host without "www.":
- ``"facebook"``      a bare name: the source is exactly that (utm_source=facebook);
- ``"facebook.com"``  a domain: the source is that domain or any subdomain of it (l.facebook.com);
- ``"google.*"``      a domain with any country/generic TLD: google.com, google.co.in, news.google.de ...

The category lists follow GA4's published source categories (SOURCE_CATEGORY_SEARCH / _SOCIAL / _VIDEO /
_SHOPPING) for the sources that matter in practice; subdomains are covered by the domain form instead of
being enumerated. The medium patterns are GA4's Default Channel Group definitions verbatim.
"""

from __future__ import annotations

from typing import Final

# Referrer host -> organic search source name. The first engine whose pattern matches wins.
SEARCH_ENGINES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("google", ("google.*", "com.google.android.googlequicksearchbox")),
    ("bing", ("bing.com",)),
    ("yahoo", ("search.yahoo.*", "yahoo.co.jp")),
    ("duckduckgo", ("duckduckgo.com",)),
    ("baidu", ("baidu.com",)),
    ("yandex", ("yandex.*", "ya.ru")),
    ("naver", ("search.naver.com", "m.search.naver.com")),
    ("daum", ("search.daum.net",)),
    ("seznam", ("search.seznam.cz",)),
    ("sogou", ("sogou.com",)),
    ("so.com", ("so.com",)),
    ("ecosia.org", ("ecosia.org",)),
    ("qwant", ("qwant.com",)),
    ("ask", ("ask.com",)),
    ("aol", ("search.aol.*",)),
    ("startpage", ("startpage.com",)),
    ("brave", ("search.brave.com",)),
    ("mail.ru", ("go.mail.ru",)),
    ("rambler", ("nova.rambler.ru",)),
    ("onet", ("szukaj.onet.pl",)),
    ("avg", ("search.avg.com",)),
    ("lycos", ("search.lycos.com",)),
    ("dogpile", ("dogpile.com",)),
    ("kvasir", ("kvasir.no",)),
)

# Hosts under a search engine's domain that are applications, not search: their referrals stay referrals.
NON_SEARCH_HOSTS: Final[frozenset[str]] = frozenset(
    {
        "accounts.google.com",
        "ads.google.com",
        "analytics.google.com",
        "calendar.google.com",
        "classroom.google.com",
        "docs.google.com",
        "drive.google.com",
        "groups.google.com",
        "mail.google.com",
        "meet.google.com",
        "sites.google.com",
        "tagmanager.google.com",
        "translate.google.com",
        "mail.yandex.ru",
        "mail.yandex.com",
        "disk.yandex.ru",
    }
)

SEARCH_SOURCES: Final[tuple[str, ...]] = (
    *(name for name, _ in SEARCH_ENGINES),
    *(pattern for _, patterns in SEARCH_ENGINES for pattern in patterns),
    "360.cn",
    "alice",
    "biglobe",
    "centrum.cz",
    "cnn",
    "comcast",
    "conduit",
    "ecosia",
    "eniro",
    "exalead.com",
    "excite.com",
    "globo",
    "google-play",
    "incredimail",
    "msn",
    "msn.com",
    "najdi",
    "rakuten",
    "rakuten.co.jp",
    "search-results",
    "search.smt.docomo.ne.jp",
    "search.ukr.net",
    "startsiden",
    "startsiden.no",
    "terra",
    "tut.by",
    "virgilio",
)

SOCIAL_SOURCES: Final[tuple[str, ...]] = (
    "facebook",
    "facebook.com",
    "fb",
    "fb.me",
    "messenger.com",
    "ig",
    "instagram",
    "instagram.com",
    "threads.net",
    "threads.com",
    "twitter",
    "twitter.com",
    "x.com",
    "t.co",
    "linkedin",
    "linkedin.com",
    "lnkd.in",
    "pinterest",
    "pinterest.*",
    "pin.it",
    "reddit",
    "reddit.com",
    "tiktok",
    "tiktok.com",
    "snapchat",
    "snapchat.com",
    "quora",
    "quora.com",
    "tumblr",
    "tumblr.com",
    "vk.com",
    "ok.ru",
    "weibo",
    "weibo.com",
    "wechat",
    "line",
    "line.me",
    "whatsapp",
    "whatsapp.com",
    "telegram",
    "t.me",
    "discord",
    "discord.com",
    "discordapp.com",
    "mastodon.social",
    "bsky.app",
    "news.ycombinator.com",
    "medium.com",
    "slack",
    "slack.com",
    "meetup.com",
    "nextdoor",
    "nextdoor.com",
    "flickr.com",
    "flipboard",
    "flipboard.com",
    "goodreads.com",
    "yelp",
    "yelp.com",
    "tripadvisor",
    "tripadvisor.*",
    "xing.com",
    "douban.com",
    "qzone.qq.com",
    "blog.naver.com",
    "kakao",
    "kakaotalk",
    "myspace.com",
    "stackexchange.com",
)

VIDEO_SOURCES: Final[tuple[str, ...]] = (
    "youtube",
    "youtube.com",
    "youtu.be",
    "vimeo",
    "vimeo.com",
    "twitch",
    "twitch.tv",
    "dailymotion",
    "dailymotion.com",
    "wistia",
    "wistia.com",
    "ted.com",
    "bilibili.com",
    "iqiyi.com",
    "youku.com",
    "netflix",
    "netflix.com",
    "hulu.com",
    "curiositystream.com",
)

SHOPPING_SOURCES: Final[tuple[str, ...]] = (
    "amazon",
    "amazon.*",
    "ebay",
    "ebay.*",
    "etsy",
    "etsy.com",
    "shopify",
    "shopify.com",
    "walmart",
    "walmart.com",
    "aliexpress",
    "aliexpress.com",
    "alibaba",
    "alibaba.com",
    "mercadolibre.*",
    "target.com",
    "bestbuy.com",
    "wayfair.com",
    "zalando.*",
    "igshopping",
    "google shopping",
    "shopping.google.com",
    "shopzilla",
)

# GA4 Default Channel Group patterns (case-insensitive, whole value unless the regex says otherwise).
PAID_MEDIUM: Final = r"^(.*cp.*|ppc|retargeting|paid.*)$"
SHOPPING_CAMPAIGN: Final = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"
VIDEO_MEDIUM: Final = r"^(.*video.*)$"
DISPLAY_MEDIUMS: Final[frozenset[str]] = frozenset({"display", "banner", "expandable", "interstitial", "cpm"})
SOCIAL_MEDIUMS: Final[frozenset[str]] = frozenset(
    {"social", "social-network", "social-media", "sm", "social network", "social media"}
)
EMAIL_VALUES: Final[frozenset[str]] = frozenset({"email", "e-mail", "e_mail", "e mail"})
REFERRAL_MEDIUMS: Final[frozenset[str]] = frozenset({"referral", "app", "link"})
DIRECT_MEDIUMS: Final[frozenset[str]] = frozenset({"(not set)", "(none)"})
PUSH_MEDIUM: Final = r"(push$|mobile|notification)"
