# Homebrew formula for oxidot. To publish: copy into a tap (e.g. oxidot/homebrew-tap) and set
# `url`/`sha256` to the release tarball (`shasum -a 256 oxidot-<version>.tar.gz`).
class Oxidot < Formula
  desc "OAuth 2.0 authorization server and OpenID Connect provider in one binary"
  homepage "https://github.com/oxidot/oxidot"
  url "https://github.com/oxidot/oxidot/archive/refs/tags/v0.1.0.tar.gz"
  sha256 "0000000000000000000000000000000000000000000000000000000000000000"
  license any_of: ["MIT", "Apache-2.0"]
  head "https://github.com/oxidot/oxidot.git", branch: "main"

  depends_on "pkgconf" => :build
  depends_on "rust" => :build
  depends_on "openssl@3"

  def install
    # A tarball has no git history: name the version's commit for `oxidot --version`.
    ENV["BUILD_GIT_COMMIT"] = "v#{version}"
    ENV["OPENSSL_DIR"] = Formula["openssl@3"].opt_prefix
    system "cargo", "install", *std_cargo_args
    (etc/"oxidot").mkpath
    config = etc/"oxidot/Rocket.toml"
    config.write(default_config) unless config.exist?
  end

  def post_install
    (var/"oxidot").mkpath
  end

  # The shipped Rocket.toml documents every key; the installed copy points at var/oxidot.
  def default_config
    <<~TOML
      # oxidot configuration (see `oxidot check` for every value and where it comes from).
      [default]
      address = "127.0.0.1"
      port = 8000
      database = "#{var}/oxidot/oxidot.redb"
    TOML
  end

  service do
    run [opt_bin/"oxidot", "--config", etc/"oxidot/Rocket.toml", "serve"]
    working_dir var/"oxidot"
    keep_alive crashed: true
    log_path var/"log/oxidot.log"
    error_log_path var/"log/oxidot.log"
  end

  test do
    assert_match version.to_s, shell_output("#{bin}/oxidot --version")
    port = free_port
    ENV["OXIDOT_PORT"] = port.to_s
    ENV["OXIDOT_DATABASE"] = (testpath/"test.redb").to_s
    pid = fork { exec bin/"oxidot", "serve" }
    begin
      discovery = nil
      20.times do
        sleep 0.5
        discovery = shell_output("curl -fsS http://127.0.0.1:#{port}/o/.well-known/openid-configuration 2>/dev/null || true")
        break unless discovery.empty?
      end
      assert_match "\"issuer\"", discovery
      assert_match "/o/token/", discovery
    ensure
      Process.kill("TERM", pid)
      Process.wait(pid)
    end
  end
end
