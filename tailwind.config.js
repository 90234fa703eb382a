// Tailwind configuration for the admin console.
//
// Classes are discovered in the templ sources and in the Go code templ
// generates from them, so a class used only inside a Go helper in a .templ
// file is still kept. Build with `make css`.
const colors = require('tailwindcss/colors');

/** @type {import('tailwindcss').Config} */
module.exports = {
  content: ['./views/**/*.templ', './views/**/*_templ.go'],
  theme: {
    extend: {
      colors: {
        // Slate is the neutral for text, borders and surfaces; teal is the
        // single accent (primary actions, active navigation, focus rings).
        accent: colors.teal,
      },
    },
  },
  plugins: [],
};
