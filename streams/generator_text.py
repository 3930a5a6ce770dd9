"""What the generator's customers write: ticket subjects and bodies, their chasing replies,
rating comments and review text, in Chinese or English by the customer's locale (some
Japanese, which Rapport does not score), from templated phrases with noise: fillers,
order numbers, emoji, doubled punctuation, capitals, dropped characters.

The mood follows the story the generator tells: a complaint is written angrily more
often than not, a question mostly calmly, a review by its stars, except that now and
then a high rating comes with furious words and a low one with kind ones, as real
reviews do. A customer who is going to drift away (``unhappy``) writes in a worse mood
more often: the generator's assumption that dissatisfaction comes before leaving, which
is what lets sentiment help the churn model on this stream (docs/decisions.md). Each customer has a text RNG of their own, so the rest of a timeline does not
depend on it. Phrases here are the generator's own, written apart from the labelled sets
the sentiment tests measure against (``tests/data/sentiment/``).
"""

from __future__ import annotations

import random
from typing import Final, Literal

Mood = Literal["angry", "upset", "calm", "happy"]

#: topic -> language -> mood -> subjects
_SUBJECTS: Final[dict[str, dict[str, dict[str, tuple[str, ...]]]]] = {
    "delivery": {
        "zh": {
            "angry": ("快递半个月了还没到", "包裹显示签收但我根本没收到", "物流一直不更新，太差了"),
            "upset": ("快递有点慢", "物流好几天没动了", "包裹还没到"),
            "calm": ("请问什么时候发货", "想查一下物流", "可以改收货地址吗"),
            "happy": ("快递很快，谢谢", "包裹收到了，速度很快"),
        },
        "en": {
            "angry": (
                "Parcel never arrived",
                "Marked as delivered but nothing here",
                "Still no delivery after 3 weeks",
            ),
            "upset": ("Delivery is taking long", "Tracking has not moved", "Parcel is late"),
            "calm": (
                "When will my order ship?",
                "Tracking number please",
                "Change of delivery address",
            ),
            "happy": ("Parcel arrived early, thanks", "Quick delivery"),
        },
    },
    "refund": {
        "zh": {
            "angry": ("退款还没到，我要投诉", "退货寄回去一个月了还不退款", "拒绝退款？太过分了"),
            "upset": ("退款怎么还没到账", "退货进度太慢"),
            "calm": ("请问退款多久到账", "怎么申请退货", "退货地址是哪里"),
            "happy": ("退款收到了，谢谢", "退货很顺利"),
        },
        "en": {
            "angry": (
                "Where is my refund?! Returned a month ago",
                "Refund refused, this is a scam",
                "Still no refund, want my money back",
            ),
            "upset": ("Refund taking a while", "Return not processed yet"),
            "calm": (
                "How long do refunds take?",
                "How do I return an item?",
                "Return label request",
            ),
            "happy": ("Refund received, thank you", "Return went smoothly"),
        },
    },
    "product": {
        "zh": {
            "angry": (
                "收到的东西是坏的，质量太差了",
                "发错货了，还破损了",
                "假货！和描述完全不一样",
            ),
            "upset": ("尺码偏小，想换一下", "有点色差", "商品有划痕"),
            "calm": ("这款有黑色吗", "想换个尺码", "请问保修多久"),
            "happy": ("质量很好，想再买一件", "很喜欢，问一下有没有别的颜色"),
        },
        "en": {
            "angry": (
                "Item arrived broken, terrible quality",
                "Wrong item and it's damaged",
                "Fake product, nothing like the photos",
            ),
            "upset": ("Runs small, need an exchange", "Colour is a bit off", "Scratch on the item"),
            "calm": ("Is this available in black?", "Size exchange", "What is the warranty?"),
            "happy": ("Love it, do you have other colours?", "Great quality, ordering another"),
        },
    },
    "account": {
        "zh": {
            "angry": ("账号被锁了，客服也不理人", "积分莫名其妙没了，太气人"),
            "upset": ("登录不了", "积分好像不对"),
            "calm": ("怎么修改密码", "积分怎么用", "如何注销账号"),
            "happy": ("会员积分很划算，问一下怎么兑换",),
        },
        "en": {
            "angry": ("Locked out and nobody answers", "My points vanished, unacceptable"),
            "upset": ("Can't log in", "Points balance looks wrong"),
            "calm": ("How do I change my password?", "How do points work?", "Close my account"),
            "happy": ("Love the membership, how do I redeem points?",),
        },
    },
}

_BODIES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "zh": {
        "angry": (
            "已经联系三次了，没人回复。",
            "再不处理我就给差评了。",
            "太让人失望了，非常不满意。",
            "你们到底管不管？",
        ),
        "upset": ("希望尽快处理。", "等了好几天了。", "麻烦看一下。"),
        "calm": ("麻烦帮我看一下，谢谢。", "订单号在下面。", "辛苦了。"),
        "happy": ("谢谢，服务很好！", "整体很满意。"),
    },
    "en": {
        "angry": (
            "I have emailed three times with no reply.",
            "This is the worst service ever.",
            "Fix this now or I'm charging it back.",
            "Absolutely furious.",
        ),
        "upset": ("Please sort this out soon.", "It has been a few days.", "A bit disappointed."),
        "calm": ("Could you have a look, please?", "Order number below.", "Thanks in advance."),
        "happy": ("Thanks, great service!", "Very happy overall."),
    },
}

_CHASERS: Final = {
    "zh": ("有人吗？", "还没有回复吗？", "请尽快回复", "怎么还没处理？？"),
    "en": ("Any update?", "Hello? Still waiting.", "Please reply.", "Why is nobody answering??"),
}

_COMMENTS: Final = {
    "zh": {
        "angry": ("客服态度很差，问题也没解决", "完全没用", "再也不来了"),
        "upset": ("处理得有点慢", "一般般"),
        "calm": ("还行", "解决了"),
        "happy": ("客服很耐心，问题解决了，谢谢", "很快就处理好了，点赞"),
    },
    "en": {
        "angry": ("Useless support, problem not solved", "Rude and slow", "Never again"),
        "upset": ("Took too long", "So-so"),
        "calm": ("OK", "Sorted in the end"),
        "happy": ("Lovely agent, sorted it quickly", "Brilliant help, thank you"),
    },
}

_REVIEWS: Final = {
    "zh": {
        "angry": ("质量太差了，用了两天就坏了", "千万别买，和图片完全不一样", "垃圾，差评"),
        "upset": ("一般，有点色差", "尺码偏小，凑合用", "包装有点破"),
        "calm": ("还可以", "和描述差不多"),
        "happy": ("质量很好，物流也快，好评", "很喜欢，已经回购了", "性价比很高，推荐"),
    },
    "en": {
        "angry": (
            "Broke after two days, total rubbish",
            "Nothing like the pictures, do not buy",
            "Cheap and nasty, returning it",
        ),
        "upset": ("Okay but the colour is off", "Runs small", "Box was a bit damaged"),
        "calm": ("Does the job", "As described"),
        "happy": (
            "Great quality and fast delivery",
            "Love it, bought a second one",
            "Excellent value, recommended",
        ),
    },
}

_JAPANESE: Final = ("配送が遅いです", "返品したいです", "サイズが合いません", "とても良い商品です")
_FILLERS: Final = {
    "zh": ("", "", "你好，", "您好，", "急！"),
    "en": ("", "", "Hi, ", "Hello, ", "URGENT: "),
}
_EMOJI: Final = ("", "", "", " 😡", " 🙏", " 😊", " 👍", " 😤")


def language_of(locale: str | None, rng: random.Random) -> str:
    """``zh``, ``en`` or ``ja`` for a customer of ``locale``."""
    if locale == "zh-CN":
        return "zh"
    if locale == "ja-JP" and rng.random() < 0.3:
        return "ja"
    return "en"


def _noisy(text: str, rng: random.Random, language: str, greet: bool = True) -> str:
    """Fillers (a greeting, for tickets), emoji, doubled punctuation, capitals and a
    dropped character, now and then."""
    if greet:
        text = rng.choice(_FILLERS.get(language, ("",))) + text
    roll = rng.random()
    if roll < 0.1 and len(text) > 6:
        cut = rng.randrange(1, len(text) - 1)
        text = text[:cut] + text[cut + 1 :]
    elif roll < 0.2 and language == "en":
        text = text.upper()
    elif roll < 0.3:
        text += "!!" if language == "en" else "！！"
    return text + rng.choice(_EMOJI)


_WORSE: Final[dict[Mood, Mood]] = {
    "happy": "calm",
    "calm": "upset",
    "upset": "angry",
    "angry": "angry",
}


def ticket_mood(complaint: bool, unhappy: bool, rng: random.Random) -> Mood:
    roll = rng.random()
    if complaint:
        return "angry" if roll < (0.85 if unhappy else 0.7) else "upset"
    angry, upset = (0.2, 0.45) if unhappy else (0.08, 0.3)
    return (
        "angry" if roll < angry else "upset" if roll < upset else "happy" if roll > 0.93 else "calm"
    )


def _mood_of(mood: Mood, unhappy: bool, rng: random.Random) -> Mood:
    return _WORSE[mood] if unhappy and rng.random() < 0.25 else mood


def ticket_text(
    topic: str,
    complaint: bool,
    locale: str | None,
    order_id: str | None,
    rng: random.Random,
    unhappy: bool = False,
) -> dict[str, str]:
    """A ticket's ``subject``, ``body`` and ``language``."""
    language = language_of(locale, rng)
    if language == "ja":
        return {"subject": rng.choice(_JAPANESE), "language": "ja-JP"}
    mood = ticket_mood(complaint, unhappy, rng)
    subject = _noisy(rng.choice(_SUBJECTS[topic][language][mood]), rng, language)
    body = rng.choice(_BODIES[language][mood])
    if order_id and rng.random() < 0.6:
        body += f" 订单号 {order_id}" if language == "zh" else f" Order {order_id}."
    tag = "zh-CN" if language == "zh" else "en"
    fields = {"subject": subject, "body": body}
    if rng.random() < 0.7:  # help desks do not always say which language
        fields["language"] = tag
    return fields


def chaser(locale: str | None, rng: random.Random) -> str:
    language = language_of(locale, rng)
    return rng.choice(_CHASERS["zh" if language == "zh" else "en"])


def rating_comment(
    csat: int, locale: str | None, rng: random.Random, unhappy: bool = False
) -> str | None:
    if rng.random() < 0.5:
        return None
    language = "zh" if language_of(locale, rng) == "zh" else "en"
    mood: Mood = (
        "angry" if csat == 1 else "upset" if csat == 2 else "calm" if csat == 3 else "happy"
    )
    return _noisy(rng.choice(_COMMENTS[language][mood]), rng, language, greet=False)


def review_text(
    rating: int, locale: str | None, rng: random.Random, unhappy: bool = False
) -> str | None:
    """A review's body, by its stars; about one in twenty-five high ratings is furious."""
    if rng.random() < 0.3:
        return None
    language = "zh" if language_of(locale, rng) == "zh" else "en"
    mood: Mood = "angry" if rating == 1 else "upset" if rating <= 3 else "happy"
    if rating >= 4 and rng.random() < 0.04:
        mood = "angry"
    elif rating <= 2 and rng.random() < 0.05:
        mood = "happy"
    mood = _mood_of(mood, unhappy, rng)
    return _noisy(rng.choice(_REVIEWS[language][mood]), rng, language, greet=False)
