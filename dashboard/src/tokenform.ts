// "Paste a read token": the first screen, and the way to add or replace a merchant's token.
import { TOKEN_REFUSED } from "./api";
import { h } from "./dom";
import { looksLikeReadToken } from "./tokens";

export function tokenForm(onSubmit: (label: string, token: string) => void, refused?: { detail: string }): HTMLElement {
  const label = h("input", { id: "token-label", name: "label", type: "text", autocomplete: "off", placeholder: "e.g. Acme Shop" });
  const token = h("input", {
    id: "token-value",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "gn_r_…",
    required: true,
  });
  const message = h("p", { class: "form-error", role: "alert" });
  const form = h(
    "form",
    {
      class: "token-form",
      "data-testid": "token-form",
      onsubmit: (ev: Event) => {
        ev.preventDefault();
        const value = token.value.trim();
        if (!looksLikeReadToken(value)) {
          message.textContent = value.startsWith("gn_w_")
            ? "That is a write key: reports need a read token. Create one with `gnomon key create --kind read`."
            : "A read token looks like gn_r_<key id>_<secret>. Create one with `gnomon key create --kind read`.";
          return;
        }
        onSubmit(label.value, value);
      },
    },
    h("h1", {}, refused ? "Paste another read token" : "Open a merchant's dashboard"),
    refused
      ? h("div", { class: "problem problem-token", "data-testid": "token-refused" }, h("p", { class: "problem-title" }, TOKEN_REFUSED), refused.detail ? h("p", { class: "problem-detail" }, refused.detail) : null)
      : h(
          "p",
          { class: "muted" },
          "Paste a read token of the merchant. Create one with ",
          h("code", {}, "gnomon key create --merchant <id> --kind read"),
          "; it is remembered in this browser only.",
        ),
    h("label", { for: "token-label" }, "Name (optional)"),
    label,
    h("label", { for: "token-value" }, "Read token"),
    token,
    message,
    h("button", { type: "submit", class: "primary" }, "Open dashboard"),
  );
  return form;
}
