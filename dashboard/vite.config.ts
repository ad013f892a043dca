import { defineConfig } from "vite";

// `npm run dev` proxies the API to a running `gnomon web` (GNOMON_WEB_URL, default http://127.0.0.1:8088).
const api = process.env.GNOMON_WEB_URL ?? "http://127.0.0.1:8088";

export default defineConfig({
  build: {
    target: "es2022",
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 300,
  },
  server: {
    proxy: { "/gnomon.v1.QueryService": api },
  },
});
