// One script for the person's pages; the path picks the page.

import "./pages.css";
import { registerPage } from "./register";
import { resetPage } from "./reset";
import { signInPage } from "./signin";
import { t } from "./text";
import { paragraph, show } from "./ui";

function start(): void {
  switch (window.location.pathname.replace(/\/+$/, "")) {
    case "/register":
      void registerPage();
      break;
    case "/reset-password":
      resetPage();
      break;
    case "/sign-in":
      signInPage();
      break;
    default:
      show(t("home.title"), paragraph(t("home.body")));
  }
}

start();
