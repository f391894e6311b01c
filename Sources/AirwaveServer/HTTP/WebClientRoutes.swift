import Hummingbird

/// Serves the browser client (the project's `Web/` folder) at `/`: static files, `index.html`
/// for `/`, modules as `text/javascript`. Registered after every other route, it only answers
/// paths no route claims. `WebPathGuard` refuses `..`, encoded slashes, NUL and the like with 400
/// before the file system is touched, so nothing outside the folder is ever served or redirected to.
struct WebClientRoutes: Sendable {
    let server: AirwaveServer

    func register(on router: Router<AirwaveRequestContext>) {
        guard let folder = server.configuration.webDirectory else {
            router.get("/") { _, _ in
                Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                         body: .init(byteBuffer: ByteBuffer(string: "This Airwave server serves no web client: start it with --web-dir pointing at Airwave's Web folder.\n")))
            }
            return
        }
        // Revalidate every time (ETag / Last-Modified answer 304): an updated client is seen at once.
        let middleware = FileMiddleware<AirwaveRequestContext, LocalFileSystem>(
            folder, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true, logger: server.logger)
        router.add(middleware: WebPathGuard())
        router.add(middleware: middleware)
    }
}
