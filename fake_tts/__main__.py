from fake_tts.server import main

main()
